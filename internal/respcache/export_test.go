package respcache

// SameMeaningGuard exposes the semantic guard to the external tests.
var SameMeaningGuard = sameMeaningGuard
