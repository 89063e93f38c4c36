package proxy

// topLevelValue returns the raw JSON value of key in the object obj, without
// decoding the rest: a single pass that skips strings (escapes included)
// and nested values by depth, so only keys of the outer object match. It
// reports false when obj is not an object or has no such key. Like
// encoding/json, the last of duplicate keys wins. It does not validate obj;
// the caller decodes the returned value, which is validated then.
func topLevelValue(obj []byte, key string) (val []byte, found bool) {
	i := skipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return nil, false
	}
	i++
	for {
		i = skipWS(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return val, found // '}' (end) or malformed
		}
		ks := i + 1
		i = skipString(obj, i)
		if i < 0 {
			return val, found
		}
		k := obj[ks : i-1]
		i = skipWS(obj, i)
		if i >= len(obj) || obj[i] != ':' {
			return val, found
		}
		i = skipWS(obj, i+1)
		vs := i
		i = skipValue(obj, i)
		if i < 0 {
			return val, found
		}
		if string(k) == key { // no allocation: compared in place
			val, found = obj[vs:i], true
		}
		i = skipWS(obj, i)
		if i >= len(obj) || obj[i] != ',' {
			return val, found
		}
		i++
	}
}

// eachTopLevel calls fn with each key (raw, without quotes) and raw value
// of the object obj, in order, until fn returns false. It reports whether
// obj was an object walked to its end with fn never refusing. Keys with
// escapes are passed raw, so they never equal a plain key.
func eachTopLevel(obj []byte, fn func(k, v []byte) bool) bool {
	i := skipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return false
	}
	i = skipWS(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return true
	}
	for {
		i = skipWS(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return false
		}
		ks := i + 1
		if i = skipString(obj, i); i < 0 {
			return false
		}
		k := obj[ks : i-1]
		i = skipWS(obj, i)
		if i >= len(obj) || obj[i] != ':' {
			return false
		}
		i = skipWS(obj, i+1)
		vs := i
		if i = skipValue(obj, i); i < 0 {
			return false
		}
		if !fn(k, obj[vs:i]) {
			return false
		}
		i = skipWS(obj, i)
		if i < len(obj) && obj[i] == '}' {
			return true
		}
		if i >= len(obj) || obj[i] != ',' {
			return false
		}
		i++
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"',
// or -1 when it does not end.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index after the value starting at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				j := skipString(b, i)
				if j < 0 {
					return -1
				}
				i = j - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	// number, true, false, null: up to the next delimiter.
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\r' && b[j] != '\t' {
		j++
	}
	if j == i {
		return -1
	}
	return j
}
