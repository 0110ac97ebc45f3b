// Package pipeline owns Hunyuan3D's shape generation from one picture to a
// clean mesh, stage by stage: preprocess, condition (the DINOv2 conditioner),
// sample (the flow-matching Euler loop over the DiT, with classifier-free or
// embedded guidance, able to advance jobs that sit at different steps in one
// engine call), decode (the VAE's latent and geometry graphs over a dense or
// coarse-to-fine grid), surface (marching cubes mapped into the bounding box),
// clean and export (through package mesh). It reaches the models only through
// the small Engine interface it defines, so the same code drives TensorRT
// plans, ONNX Runtime and the fakes of its tests; every stage takes a batch of
// jobs and reports its wall time, so the server can schedule and measure it.
package pipeline
