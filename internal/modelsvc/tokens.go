package modelsvc

import (
	"github.com/llmo/llmo/internal/engine"
	"github.com/llmo/llmo/internal/tokenizer"
)

// These bind the backend to the engine's tokenizer.

func hasTokenizer(m *engine.Model) bool { return m.Tokenizer() != nil }

func encodeWith(m *engine.Model, text string, addBOS, special bool) []int {
	tok := m.Tokenizer()
	return tok.Encode(text, tokenizer.EncodeOptions{AddBOS: addBOS && tok.AddBOS(), ParseSpecial: special})
}

func tokenText(m *engine.Model, id int) string {
	tok := m.Tokenizer()
	if id < 0 || id >= tok.VocabSize() {
		return ""
	}
	return tok.Decode([]int{id})
}

func specialTexts(m *engine.Model) (bos, eos string) {
	tok := m.Tokenizer()
	if id := tok.BOS(); id >= 0 && id < tok.VocabSize() {
		bos = tok.Piece(id)
	}
	if id := tok.EOS(); id >= 0 && id < tok.VocabSize() {
		eos = tok.Piece(id)
	}
	return bos, eos
}
