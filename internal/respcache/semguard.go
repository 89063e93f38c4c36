package respcache

import (
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Embeddings place "is X safe" and "is X not safe" close together, and
// "2 + 2" next to "2 + 3". sameMeaningGuard rejects a semantic hit whose
// prompt differs from the query in its negations or its numbers, whatever
// the cosine similarity says.
func sameMeaningGuard(a, b string) bool {
	fa, fb := promptFacts(a), promptFacts(b)
	return fa.negations == fb.negations && slices.Equal(fa.numbers, fb.numbers)
}

type facts struct {
	negations int
	numbers   []string
}

var negationWords = map[string]bool{
	"not": true, "no": true, "never": true, "none": true, "nothing": true, "nobody": true,
	"nowhere": true, "neither": true, "nor": true, "without": true, "cannot": true,
	"cant": true, "dont": true, "doesnt": true, "didnt": true, "isnt": true, "arent": true,
	"wasnt": true, "werent": true, "wont": true, "wouldnt": true, "shouldnt": true,
	"couldnt": true, "hasnt": true, "havent": true, "hadnt": true, "mustnt": true,
	"neednt": true, "aint": true, "except": true, "excluding": true, "exclude": true,
	"unless": true, "lack": true, "lacks": true, "absent": true, "nope": true, "non": true,
}

var numberWords = map[string]string{
	"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
	"seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
	"thirteen": "13", "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17",
	"eighteen": "18", "nineteen": "19", "twenty": "20", "thirty": "30", "forty": "40",
	"fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
	"hundred": "100", "thousand": "1000", "million": "1e6", "billion": "1e9", "trillion": "1e12",
	"half": "0.5", "twice": "x2", "double": "x2", "triple": "x3", "dozen": "12",
	"first": "#1", "second": "#2", "third": "#3", "fourth": "#4", "fifth": "#5",
	"once": "x1", "thrice": "x3",
}

// promptFacts extracts the negation count and the sequence of numbers
// (digits normalised, "1,000" = "1000" = "1000.0"; number words mapped).
func promptFacts(s string) facts {
	var f facts
	s = strings.ToLower(strings.ReplaceAll(s, "\u2019", "'"))
	rs := []rune(s)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsDigit(r):
			j := i
			for j < len(rs) && (unicode.IsDigit(rs[j]) || ((rs[j] == '.' || rs[j] == ',') && j+1 < len(rs) && unicode.IsDigit(rs[j+1]))) {
				j++
			}
			neg := i > 0 && rs[i-1] == '-'
			f.numbers = append(f.numbers, normDigits(string(rs[i:j]), neg))
			i = j
		case unicode.IsLetter(r):
			j := i
			for j < len(rs) && (unicode.IsLetter(rs[j]) || (rs[j] == '\'' && j+1 < len(rs) && unicode.IsLetter(rs[j+1]))) {
				j++
			}
			w := string(rs[i:j])
			if strings.HasSuffix(w, "n't") {
				f.negations++
			} else if negationWords[strings.ReplaceAll(w, "'", "")] {
				f.negations++
			} else if n, ok := numberWords[w]; ok {
				f.numbers = append(f.numbers, n)
			}
			i = j
		default:
			i++
		}
	}
	return f
}

// normDigits normalises a run like "1,000.50": commas as thousands
// separators are dropped; a value that parses is printed canonically.
func normDigits(s string, neg bool) string {
	t := s
	if strings.Count(s, ".") <= 1 {
		t = strings.ReplaceAll(s, ",", "")
	}
	if v, err := strconv.ParseFloat(t, 64); err == nil {
		if neg {
			v = -v
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	if neg {
		return "-" + s
	}
	return s
}
