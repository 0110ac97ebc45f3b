/*
 * hy3d.h — the whole C ABI of the hy3d native shim.
 *
 * Conventions (they hold for every function below):
 *  - Every entry point that can fail returns hy3d_status. HY3D_OK is 0.
 *    On failure, hy3d_last_error() returns a message for the calling thread
 *    that stays valid until the next hy3d call on that thread.
 *  - No C++ exception ever crosses this boundary.
 *  - Handles are opaque, created by a _load or producer function and
 *    released by the matching _destroy function. Destroy functions accept NULL.
 *  - Buffers passed IN are borrowed for the duration of the call only, unless
 *    a comment says otherwise. Buffers handed OUT are owned by the handle they
 *    come from and stay valid until that handle is destroyed.
 *  - Grids are row-major with the last axis fastest: value (i, j, k) of an
 *    nx*ny*nz grid is values[(i*ny + j)*nz + k]; i maps to x, j to y, k to z.
 *
 * Bump HY3D_ABI_VERSION on any incompatible change; the Go bindings refuse a
 * library whose hy3d_abi_version() differs from the header they were built with.
 */
#ifndef HY3D_H
#define HY3D_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HY3D_ABI_VERSION 3u

typedef enum hy3d_status {
  HY3D_OK = 0,
  HY3D_ERR_INVALID_ARGUMENT = 1, /* a NULL handle, bad size, bad index, ... */
  HY3D_ERR_OUT_OF_MEMORY = 2,    /* host or device allocation failed */
  HY3D_ERR_UNAVAILABLE = 3,      /* feature not compiled in (e.g. TensorRT) or no device */
  HY3D_ERR_IO = 4,               /* a file could not be read */
  HY3D_ERR_INCOMPATIBLE = 5,     /* plan built for another TensorRT version or GPU */
  HY3D_ERR_SHAPE = 6,            /* a shape outside the engine's profile or batch above max */
  HY3D_ERR_RUNTIME = 7,          /* CUDA/TensorRT reported an error while running */
  HY3D_ERR_INTERNAL = 8          /* a bug in the shim */
} hy3d_status;

/* ABI version of the loaded library (compare with HY3D_ABI_VERSION). */
uint32_t hy3d_abi_version(void);

/* Message describing the last failure on the calling thread; never NULL
 * (empty string if none). Owned by the library, thread-local. */
const char *hy3d_last_error(void);

/* Log sink for native messages (e.g. "CUDA graph capture failed, falling back
 * to enqueue"). level: 0 debug, 1 info, 2 warn, 3 error. The message is only
 * valid during the callback. The callback may be invoked from any thread.
 * Passing NULL restores the default (messages are dropped). */
typedef void (*hy3d_log_fn)(int level, const char *message, void *user);
void hy3d_set_log_callback(hy3d_log_fn fn, void *user);

/* ------------------------------------------------------------------------ */
/* Meshes produced by the geometry kernels.                                 */
/* ------------------------------------------------------------------------ */

typedef struct hy3d_mesh hy3d_mesh;

/* Borrow the arrays of a mesh: vertices are xyz float triples
 * (vertex_count*3 floats), indices are uint32 triples (triangle_count*3).
 * The pointers are owned by the mesh and valid until hy3d_mesh_destroy. */
hy3d_status hy3d_mesh_view(const hy3d_mesh *mesh, const float **vertices, size_t *vertex_count,
                           const uint32_t **indices, size_t *triangle_count);
void hy3d_mesh_destroy(hy3d_mesh *mesh);

/* ------------------------------------------------------------------------ */
/* Marching cubes.                                                          */
/* ------------------------------------------------------------------------ */

/* Extract the iso-surface {value == level} of a dense nx*ny*nz float grid.
 * "Inside" is value > level. NaN samples count as outside and are never
 * interpolated into a vertex. Vertices are in grid index coordinates
 * (0..nx-1, 0..ny-1, 0..nz-1), shared between the triangles that use them.
 * Triangles are counter-clockwise seen from outside (their right-hand normal
 * points toward decreasing values). threads <= 0 means "all hardware threads".
 * values is borrowed; *out receives a new mesh owned by the caller. */
hy3d_status hy3d_marching_cubes(const float *values, int64_t nx, int64_t ny, int64_t nz, float level,
                                int threads, hy3d_mesh **out);

/* Same, but only cells inside the listed blocks are visited. The grid is cut
 * into cubic blocks of block_size cells per side; block b covers cells
 * [blocks[3b]*block_size, (blocks[3b]+1)*block_size) along i (then j, k).
 * Samples outside visited cells are never read, so they may be NaN.
 * blocks is borrowed (3*block_count int32). */
hy3d_status hy3d_marching_cubes_blocks(const float *values, int64_t nx, int64_t ny, int64_t nz,
                                       float level, int32_t block_size, const int32_t *blocks,
                                       size_t block_count, int threads, hy3d_mesh **out);

/* ------------------------------------------------------------------------ */
/* Simplification — see native/src/simplify.cpp.                            */
/* ------------------------------------------------------------------------ */

/* Decimate an indexed triangle mesh toward target_triangles by quadric edge
 * collapse (Hunyuan3D's FaceReducer, i.e. MeshLab's quadric collapse with
 * preserved boundary, normals and topology). Every collapse passes the link
 * condition, so a manifold input stays manifold, a closed one closed, and
 * each component keeps its genus; boundary vertices and the vertices of
 * non-manifold edges never move; faces that repeat a vertex are dropped.
 * max_error > 0 also refuses collapses whose estimated (RMS quadric) error
 * exceeds that fraction of the bounding-box diagonal; 0 means no bound. The
 * result may stay above target_triangles when no allowed collapse is left.
 * It holds only referenced vertices, unmoved ones bit-exact, in vertex-cache
 * order (meshoptimizer). threads <= 0 means "all hardware threads" (only
 * edge ranking runs in parallel). Inputs are borrowed; *out receives a new
 * mesh owned by the caller. */
hy3d_status hy3d_simplify(const float *vertices, size_t vertex_count, const uint32_t *indices,
                          size_t triangle_count, size_t target_triangles, float max_error, int threads,
                          hy3d_mesh **out);

/* ------------------------------------------------------------------------ */
/* Texture geometry — see native/src/texture_*.cpp and docs/texture.md.     */
/* Images are row-major, `channels` floats per pixel. Face ids are 0-based, */
/* -1 where no face covers a pixel. Inputs are borrowed, outputs are caller */
/* buffers of the stated sizes. threads <= 0 means "all hardware threads";  */
/* no result depends on the thread count.                                   */
/* ------------------------------------------------------------------------ */

/* Rasterize an orthographic view. world_to_camera is a row-major 3x4 matrix
 * (camera looks down -z, y up); the view covers [-ortho_scale/2,
 * ortho_scale/2]^2 of camera x, y. Pixel conventions are Hunyuan3D's
 * (texture_raster.cpp): row 0 is camera y = -ortho_scale/2. Outputs per
 * pixel: face_ids (width*height), barycentrics (3 per pixel, 0 where no
 * face), depth (distance along the view direction, 0 where no face; may be
 * NULL). Nearer wins, then the lower face id. */
hy3d_status hy3d_rasterize_ortho(const float *vertices, size_t vertex_count, const uint32_t *indices,
                                 size_t triangle_count, const float *world_to_camera, float ortho_scale,
                                 int32_t width, int32_t height, int threads, int32_t *face_ids, float *barycentrics,
                                 float *depth);

/* Rasterize the mesh in UV space (uvs: 2 floats per vertex): texel (i, j)
 * is sampled at u = (j + 1/2)/width, v = (i + 1/2)/height. Where faces
 * overlap in UV the lower face id wins. barycentrics may be NULL. */
hy3d_status hy3d_rasterize_uv(const float *uvs, size_t vertex_count, const uint32_t *indices, size_t triangle_count,
                              int32_t width, int32_t height, int threads, int32_t *face_ids, float *barycentrics);

/* The covered texels of a UV raster (face_ids from hy3d_rasterize_uv of the
 * same uvs and indices), tile by tile (tiles of 8 x 8 texels in row-major
 * order, texels row-major inside a tile, so that neighbours on the surface
 * stay close in the list): their count and, when texel_index is non-NULL,
 * each one's linear index and the vertex attributes (channels floats per
 * vertex, e.g. positions) interpolated there (texel_values: channels per
 * covered texel). Call once with texel_index NULL to size the outputs. */
hy3d_status hy3d_uv_texels(const float *uvs, size_t vertex_count, const uint32_t *indices, size_t triangle_count,
                           const int32_t *face_ids, int32_t width, int32_t height, const float *attributes,
                           int32_t channels, int threads, size_t *texel_count, uint32_t *texel_index,
                           float *texel_values);

/* hy3d_interpolate flags. */
#define HY3D_INTERPOLATE_PER_FACE 1 /* one attribute per face, not per vertex */
#define HY3D_INTERPOLATE_UNIT 2     /* rescale each covered pixel's value to unit length (zero stays zero) */

/* out[p] = attributes interpolated at pixel p of a raster: per vertex
 * (attribute_count vertices, barycentric blend) or per face (flag
 * HY3D_INTERPOLATE_PER_FACE, attribute_count == triangle_count). Pixels
 * without a face (id < 0 or >= triangle_count) get background (channels
 * floats). */
hy3d_status hy3d_interpolate(const float *attributes, int32_t channels, int32_t flags, size_t attribute_count,
                             const uint32_t *indices, size_t triangle_count, const int32_t *face_ids,
                             const float *barycentrics, size_t pixel_count, const float *background, int threads,
                             float *out);

/* Per-pixel bake weight of a view: cos(normal, to_camera), 0 below
 * cos_threshold, -1 (unreliable) on background and within radius pixels of
 * the background or of a depth edge. normals: 3 per pixel (world space),
 * depth from hy3d_rasterize_ortho. */
hy3d_status hy3d_bake_view_weights(const int32_t *face_ids, const float *normals, const float *depth, int32_t width,
                                   int32_t height, const float *to_camera, float cos_threshold, int32_t radius,
                                   int threads, float *weights);

/* The bounding box of every run of `run` consecutive texels of a texel
 * list (the last run may be shorter): 6 floats per run, minimum x, y, z
 * then maximum. hy3d_bake_gather skips the runs a view cannot accept. */
hy3d_status hy3d_texel_bounds(const float *texel_positions, size_t texel_count, int32_t run, int threads,
                              float *bounds);

/* Hunyuan3D-2.1's per-texel bake ("back_sample"): texel i (world position
 * texel_positions[3i..], linear index texel_index[i] < texture_pixels) is
 * projected into the view and, when accepted, adds view_weight *
 * weight^exponent times its bilinear colour sample into accum_color
 * (channels per texel) and the weight into accum_weight. *used is 0 when the
 * view was skipped because over 99 % of what it paints is painted already.
 * texel_bounds (from hy3d_texel_bounds for runs of texel_run texels, or
 * NULL) only saves time. */
hy3d_status hy3d_bake_gather(const float *texel_positions, const uint32_t *texel_index, size_t texel_count,
                             const float *texel_bounds, int32_t texel_run, const float *image, const float *depth,
                             const float *weights, int32_t width, int32_t height, int32_t channels,
                             const float *world_to_camera, float ortho_scale, float view_weight, float exponent,
                             float depth_tolerance, size_t texture_pixels, int threads, float *accum_color,
                             float *accum_weight, int32_t *used);

/* Hunyuan3D-2.0's forward bake ("linear"): every reliable pixel (weight >= 0)
 * splats its colour and weight bilinearly at its UV (uv_map: 2 per pixel);
 * the view's normalized texture, weighted by view_weight * cos^exponent,
 * is added into the sums as in hy3d_bake_gather. */
hy3d_status hy3d_bake_splat(const float *uv_map, const float *image, const float *weights, int32_t width,
                            int32_t height, int32_t channels, int32_t texture_width, int32_t texture_height,
                            float view_weight, float exponent, int threads, float *accum_color, float *accum_weight,
                            int32_t *used);

/* Divide the sums in place: accum_color becomes the merged texture,
 * painted[t] = accum_weight[t] > 1e-8. */
hy3d_status hy3d_bake_resolve(float *accum_color, const float *accum_weight, size_t texel_count, int32_t channels,
                              int threads, uint8_t *painted);

/* Colour every vertex from the painted texels under its corners and, for the
 * rest, by one multi-source shortest-path pass over the welded mesh
 * (texture_fill.cpp). Vertices with equal weld[v] are copies of one
 * position (NULL: none are). vertex_known[v] is 0 for vertices no painted texel reaches. */
hy3d_status hy3d_fill_vertex_colors(const float *positions, const float *uvs, const uint32_t *weld,
                                    size_t vertex_count, const uint32_t *indices, size_t triangle_count,
                                    const float *texture, const uint8_t *painted, int32_t width, int32_t height,
                                    int32_t channels, float *vertex_colors, uint8_t *vertex_known);

/* Fill every unpainted texel in place: inside charts (face_ids from
 * hy3d_rasterize_uv of uvs and indices) from the vertex colours plus a
 * pull-push residual, in the gutters by pull-push of the chart texels. */
hy3d_status hy3d_fill_texels(float *texture, const uint8_t *painted, const int32_t *face_ids, const float *uvs,
                             const uint32_t *indices, size_t triangle_count, const float *vertex_colors,
                             const uint8_t *vertex_known, size_t vertex_count, int32_t width, int32_t height,
                             int32_t channels, int threads);

/* An encoded image (texture_jpeg.cpp): view its bytes, then destroy it. */
typedef struct hy3d_buffer hy3d_buffer;

/* Encode a float image (channels per pixel, row-major, values in [0, 1])
 * as baseline JPEG with libjpeg's tables for quality 1..100 (4:2:0 chroma
 * for colour). Output component k (components 1: grey, 3: RGB) is channel
 * layout[k] quantized to 8 bits, or 255 where layout[k] < 0. */
hy3d_status hy3d_encode_jpeg(const float *pixels, int32_t width, int32_t height, int32_t channels,
                             const int32_t *layout, int32_t components, int32_t quality, int threads,
                             hy3d_buffer **out);
hy3d_status hy3d_buffer_view(const hy3d_buffer *buffer, const uint8_t **data, size_t *size);
void hy3d_buffer_destroy(hy3d_buffer *buffer);

typedef struct hy3d_atlas_options {
  int32_t size;          /* atlas side in texels; packing and the overlap check run at it */
  int32_t padding;       /* no texel centre lies within this many texels of two charts (0: charts share no texel) */
  float max_chart_angle; /* degrees a face normal may deviate from its chart's, in (0, 90) */
  int32_t threads;
} hy3d_atlas_options;

typedef struct hy3d_atlas_stats {
  uint32_t charts;
  double stretch_l2;       /* Sander et al.'s L2 stretch, 1 for an isometry up to scale */
  double utilization;      /* fraction of texel centres covered by a face */
  uint64_t overlap_texels; /* texel centres strictly inside two faces */
} hy3d_atlas_stats;

typedef struct hy3d_atlas hy3d_atlas;

/* Segment, parameterize and pack (texture_atlas.cpp). */
hy3d_status hy3d_atlas_build(const float *vertices, size_t vertex_count, const uint32_t *indices,
                             size_t triangle_count, const hy3d_atlas_options *options, hy3d_atlas **out);
/* Borrow the result: xref[v] is the input vertex of output vertex v; uvs 2
 * per output vertex; indices 3 per input triangle, same order; face_chart
 * per triangle. */
hy3d_status hy3d_atlas_view(const hy3d_atlas *atlas, const uint32_t **xref, const float **uvs, size_t *vertex_count,
                            const uint32_t **indices, size_t *triangle_count, const uint32_t **face_chart,
                            hy3d_atlas_stats *stats);
void hy3d_atlas_destroy(hy3d_atlas *atlas);

/* ------------------------------------------------------------------------ */
/* TensorRT engines — compiled only with CUDA + TensorRT 10. Without them   */
/* every function below returns HY3D_ERR_UNAVAILABLE (and hy3d_tensorrt_    */
/* available() returns 0). See native/src/trt_engine.cpp and               */
/* docs/tensorrt.md.                                                        */
/* ------------------------------------------------------------------------ */

/* 1 when the library was built with TensorRT, else 0. */
int hy3d_tensorrt_available(void);

typedef struct hy3d_runtime_info {
  int32_t tensorrt_version;     /* of the loaded libnvinfer, e.g. 100300 for 10.3.0 (major*10000+minor*100+patch) */
  int32_t cuda_runtime_version; /* cudaRuntimeGetVersion, e.g. 12040 */
  int32_t cuda_driver_version;  /* cudaDriverGetVersion; 0 when no driver is installed */
  int32_t device_count;         /* 0 when no driver or no device */
} hy3d_runtime_info;

typedef struct hy3d_device_info {
  char name[256];
  int32_t compute_major;
  int32_t compute_minor;
  uint64_t total_memory;
} hy3d_device_info;

hy3d_status hy3d_runtime_info_get(hy3d_runtime_info *out);
hy3d_status hy3d_device_info_get(int32_t device, hy3d_device_info *out);

#define HY3D_MAX_DIMS 8

typedef enum hy3d_dtype {
  HY3D_DTYPE_FLOAT32 = 0,
  HY3D_DTYPE_FLOAT16 = 1,
  HY3D_DTYPE_INT32 = 2,
  HY3D_DTYPE_INT64 = 3,
  HY3D_DTYPE_INT8 = 4,
  HY3D_DTYPE_BOOL = 5,
  HY3D_DTYPE_OTHER = 6
} hy3d_dtype;

typedef struct hy3d_tensor_desc {
  const char *name; /* owned by the engine */
  int32_t is_input; /* 1 input, 0 output */
  hy3d_dtype dtype;
  int32_t rank;
  int64_t dims[HY3D_MAX_DIMS];        /* -1 for dynamic dimensions */
  int64_t min_dims[HY3D_MAX_DIMS];    /* profile 0 (inputs only; zero for outputs) */
  int64_t opt_dims[HY3D_MAX_DIMS];
  int64_t max_dims[HY3D_MAX_DIMS];
} hy3d_tensor_desc;

#define HY3D_MAX_BUCKETS 16

typedef struct hy3d_engine_options {
  int32_t device;               /* CUDA device ordinal */
  const int32_t *batch_buckets; /* borrowed; strictly ascending batch sizes, each within profile 0's batch range */
  size_t bucket_count;          /* 0: one bucket at the engine's maximum batch; at most HY3D_MAX_BUCKETS in all */
  int32_t use_cuda_graphs;      /* 0: plain enqueueV3 only */
  int32_t break_captures;       /* tests only: a synchronizing call inside every capture invalidates it, so
                                   that the fallback to plain enqueueV3 runs as it does for an engine whose
                                   work cannot be captured */
} hy3d_engine_options;

typedef struct hy3d_engine hy3d_engine;

/* Deserialize a plan (bytes borrowed) into an engine with one execution
 * context per batch bucket; the engine's maximum batch (profile 0) is always
 * the last bucket, added when the list stops below it. Every I/O tensor's
 * first dimension is its batch. With use_cuda_graphs, one CUDA graph per
 * bucket is captured here (after a warm-up enqueue); a bucket whose capture
 * fails runs with plain enqueueV3 and the failure is logged (warn).
 * Fails with HY3D_ERR_INCOMPATIBLE, carrying TensorRT's own message and the
 * versions/GPUs it can tell, when the plan was built for another TensorRT or
 * GPU; HY3D_ERR_OUT_OF_MEMORY, with the sizes requested and free, when the
 * device runs out of memory (TensorRT's allocation failures are not taken
 * for a mismatch); HY3D_ERR_INVALID_ARGUMENT when the bytes are not a
 * TensorRT plan or a bucket is outside the profile; HY3D_ERR_UNAVAILABLE
 * when the device does not exist. */
hy3d_status hy3d_engine_load(const void *plan, size_t plan_size, const hy3d_engine_options *options,
                             hy3d_engine **out);
void hy3d_engine_destroy(hy3d_engine *engine);

hy3d_status hy3d_engine_tensor_count(const hy3d_engine *engine, int32_t *count);
hy3d_status hy3d_engine_tensor_desc(const hy3d_engine *engine, int32_t index, hy3d_tensor_desc *out);

/* One host tensor binding for hy3d_engine_run: float32 only (docs/engine-contract.md). */
typedef struct hy3d_host_tensor {
  const char *name;
  float *data; /* inputs are read, outputs written; borrowed */
  int32_t rank;
  int64_t dims[HY3D_MAX_DIMS];
} hy3d_host_tensor;

/* The shapes of the outputs that hy3d_engine_run produces for inputs of
 * these shapes (input data is neither read nor required). For each
 * outputs[i], name selects the output; rank and dims are written. Fails with
 * HY3D_ERR_SHAPE when an input shape is outside profile 0 (the message names
 * the input, its shape and the profile) or the batch is above the maximum. */
hy3d_status hy3d_engine_output_shapes(const hy3d_engine *engine, const hy3d_host_tensor *inputs,
                                      size_t input_count, hy3d_host_tensor *outputs, size_t output_count);

/* Run the engine on host buffers. Every input is given once; batch b (the
 * first dim, equal for all inputs) runs in the smallest bucket >= b: inputs
 * are copied through pinned staging and zero-padded to the bucket, the
 * bucket's CUDA graph is replayed (or enqueueV3 called), and the first b rows
 * of each output are copied back. A shape or buffer-address change of a
 * bucket invalidates its graph, which is re-captured on that call. Output
 * dims must be filled in by the caller with the shape
 * hy3d_engine_output_shapes reports (the call checks them); outputs not
 * listed are computed and dropped. Blocks until the outputs are on the host.
 * b above the engine's maximum fails with HY3D_ERR_SHAPE naming both. A
 * sticky CUDA error (an illegal address and the like: the process's CUDA
 * context is lost) fails with HY3D_ERR_UNAVAILABLE, and so does every later
 * run of the engine, at once, with the same message.
 * Thread-safe: concurrent calls on one engine serialize, because its
 * contexts share one device memory block. */
hy3d_status hy3d_engine_run(hy3d_engine *engine, const hy3d_host_tensor *inputs, size_t input_count,
                            hy3d_host_tensor *outputs, size_t output_count);

/* Counters since load, for telemetry and tests. */
typedef struct hy3d_engine_stats {
  uint64_t runs;             /* successful hy3d_engine_run calls */
  uint64_t graph_launches;   /* runs that replayed a CUDA graph */
  uint64_t plain_enqueues;   /* runs (and warm-ups) that called enqueueV3 directly */
  uint64_t graph_captures;   /* successful captures, at load and after shape/address changes */
  uint64_t capture_failures; /* captures that failed and fell back to enqueueV3 */
  int32_t bucket_count;
  int32_t buckets[HY3D_MAX_BUCKETS];
  int32_t graph_ready[HY3D_MAX_BUCKETS]; /* 1 when that bucket currently has a captured graph */
  uint64_t device_memory;    /* bytes of the activation block shared by the contexts */
} hy3d_engine_stats;

hy3d_status hy3d_engine_stats_get(const hy3d_engine *engine, hy3d_engine_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* HY3D_H */
