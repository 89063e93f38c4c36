package respcache

import (
	"reflect"
	"testing"
)

// FuzzEntryFromSSE feeds arbitrary upstream streams to the capture parser:
// it must never panic, and a stream it accepts must survive a round trip
// (render as SSE, parse again, render as JSON, parse again) unchanged.
func FuzzEntryFromSSE(f *testing.F) {
	f.Add([]byte("data: {\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n" +
		"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"b\"},\"finish_reason\":\"length\"},{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}]}\r\n\r\ndata: [DONE]\r\n\r\n"))
	f.Add([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"logprobs\":{\"content\":[{\"token\":\"x\",\"logprob\":-0.1,\"top_logprobs\":[]}]},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{}]},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"))
	f.Add([]byte(": comment\ndata: [DONE]\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := entryFromSSE(kindChat, in)
		if err != nil {
			return
		}
		again, err := entryFromSSE(kindChat, e.SSE(true))
		if err != nil {
			t.Fatalf("own SSE rejected: %v\n%s", err, e.SSE(true))
		}
		if !sameEntry(e, again) {
			t.Fatalf("SSE round trip changed the entry:\n%+v\n%+v", e, again)
		}
		j, err := entryFromJSON(kindChat, e.JSON())
		if err != nil {
			t.Fatalf("own JSON rejected: %v\n%s", err, e.JSON())
		}
		for i := range e.Choices {
			if j.Choices[i].text() != e.Choices[i].text() || j.Choices[i].FinishReason != e.Choices[i].FinishReason {
				t.Fatalf("JSON round trip changed choice %d", i)
			}
		}
		b, _ := encodeEntry(e)
		if d, err := decodeEntry(b); err != nil || !sameEntry(d, e) {
			t.Fatalf("store round trip: %v", err)
		}
	})
}

// sameEntry compares entries ignoring roles that rendering fills in.
func sameEntry(a, b *Entry) bool {
	if len(a.Choices) != len(b.Choices) || a.Model != b.Model || !reflect.DeepEqual(a.Usage, b.Usage) {
		return false
	}
	for i := range a.Choices {
		ca, cb := a.Choices[i], b.Choices[i]
		if ca.FinishReason != cb.FinishReason || len(ca.Pieces) != len(cb.Pieces) {
			return false
		}
		for j := range ca.Pieces {
			if ca.Pieces[j].Text != cb.Pieces[j].Text {
				return false
			}
		}
	}
	return true
}
