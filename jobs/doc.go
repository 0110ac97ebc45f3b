// Package jobs is hy3d's job engine, and knows nothing of HTTP. It owns
// admission (a bounded priority queue, with admission tickets so that a
// request the queue cannot take is refused before its picture is decoded),
// the coalescing of identical requests (by the bytes of their upload and by
// their preprocessed pixels), every generation's record and the bound on
// them, deadlines, cancellation, draining, and the step loop that drives a
// Generator: per model set one goroutine runs the DiT one step at a time
// over every job that is sampling, newly conditioned jobs join between
// steps, finished ones leave at once for finisher goroutines that run the
// stages after sampling beside the next steps, and cancelled ones leave at
// the next step (PolicyDispatch, which runs a batch to its end before taking
// the next, remains for comparison). A job may run through several models'
// loops: a Generator's Finish hands a textured generation on from the shape
// model's loop to a paint model's, which steps the paint UNet over every job
// painting in the same way, and the result gathers both phases' stages. Its refusals and lookups fail with
// typed errors (QueueFullError, ErrDraining, ErrNotFound, …) that the server
// maps to responses in one place.
package jobs
