// Command fakeupstream serves gwtest's OpenAI-shaped responder on a port,
// as the upstream of the proxy-overhead benchmark (bench.sh).
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/llmo/llmo/internal/gateway/gwtest"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9100", "listen address")
	model := flag.String("model", "fake", "model name served")
	flag.Parse()
	log.Fatal(http.ListenAndServe(*addr, gwtest.New("bench", *model)))
}
