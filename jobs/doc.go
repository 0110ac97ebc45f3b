// Package jobs is hy3d's job engine, and knows nothing of HTTP. It owns
// admission (a bounded priority queue with admission tickets, so that a
// request the queue cannot take is refused before its picture is decoded),
// the coalescing of identical requests (by the bytes of their upload and by
// their preprocessed pixels), every generation's record and its bound, the
// per-model step loop that drives a Generator, deadlines, cancellation and
// draining. Its refusals and lookups fail with typed errors (QueueFullError,
// ErrDraining, ErrNotFound, …) that the server maps to responses in one
// place.
//
// The step loop batches at the level of sampling steps: per model set one
// goroutine runs the DiT one step at a time over every job that is
// sampling; newly conditioned jobs join between steps, finished ones leave
// at once for the stages after sampling (decode, surface, cleanup, export),
// which run on goroutines of their own while the next steps go on, and
// cancelled ones leave at the next step. The dispatch policy, which runs a
// batch start to finish before taking the next, remains for comparison.
package jobs
