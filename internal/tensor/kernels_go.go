//go:build !(goexperiment.simd && amd64) || purego

package tensor

// SIMD is the kernel set in use.
const SIMD = "go"

func dotF32(a, b []float32) float32 { return dotF32Go(a, b) }

func axpy(a float32, x, y []float32) { axpyGo(a, x, y) }
