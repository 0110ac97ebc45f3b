// Runs xatlas (npm xatlasjs, WebAssembly) on one mesh with xatlas's default
// chart and pack options, as Hunyuan3D calls xatlas.parametrize.
// Usage: node xatlas.mjs PACKAGE_DIR MESH_IN UV_OUT
// MESH_IN: uint32 vertex count, uint32 triangle count, float32 xyz per
// vertex, uint32 indices. UV_OUT: uint32 vertex count, uint32 index count,
// then per vertex uint32 input vertex and float32 u, v in [0, 1], then
// uint32 indices. Prints {"seconds", "vertices", "width", "height"}.
// xatlasjs passes 16-bit indices, so meshes over 65535 vertices are refused.
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createRequire } from "node:module";

const [pkgArg, meshIn, uvOut] = process.argv.slice(2);
const pkg = resolve(pkgArg);
const { Api } = await import(pathToFileURL(join(pkg, "dist/node/api.mjs")).href);
const createXAtlasModule = createRequire(import.meta.url)(join(pkg, "dist/node/xatlas.js"));

const raw = readFileSync(meshIn);
const nv = raw.readUInt32LE(0), nt = raw.readUInt32LE(4);
if (nv > 65535) {
  console.error(`xatlasjs takes 16-bit indices: ${nv} vertices`);
  process.exit(2);
}
const vertices = new Float32Array(raw.buffer.slice(raw.byteOffset + 8, raw.byteOffset + 8 + 12 * nv));
const indices32 = new Uint32Array(raw.buffer.slice(raw.byteOffset + 8 + 12 * nv, raw.byteOffset + 8 + 12 * nv + 12 * nt));
const indices = Uint16Array.from(indices32);

const XAtlas = Api(createXAtlasModule);
const api = await new Promise((resolve) => {
  const a = new XAtlas(() => resolve(a), (path, dir) => (path === "xatlas.wasm" ? join(pkg, "dist/node", path) : dir + path));
});
api.createAtlas();
const start = process.hrtime.bigint();
api.addMesh(indices, vertices);
const atlas = api.generateAtlas({}, {});
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const mesh = atlas.meshes[0];
if (mesh.vertexCount > 65535) {
  console.error(`xatlasjs returns 16-bit indices: ${mesh.vertexCount} vertices`);
  process.exit(2);
}
const uv = mesh.vertex.coords1;
let maxUV = 0;
for (const x of uv) maxUV = Math.max(maxUV, x);
const su = maxUV > 1 ? atlas.width : 1, sv = maxUV > 1 ? atlas.height : 1;
const out = Buffer.alloc(8 + 12 * mesh.vertexCount + 4 * mesh.index.length);
out.writeUInt32LE(mesh.vertexCount, 0);
out.writeUInt32LE(mesh.index.length, 4);
for (let v = 0; v < mesh.vertexCount; v++) {
  out.writeUInt32LE(mesh.oldIndexes[v], 8 + 12 * v);
  out.writeFloatLE(uv[2 * v] / su, 12 + 12 * v);
  out.writeFloatLE(uv[2 * v + 1] / sv, 16 + 12 * v);
}
mesh.index.forEach((i, k) => out.writeUInt32LE(i, 8 + 12 * mesh.vertexCount + 4 * k));
writeFileSync(uvOut, out);
console.log(JSON.stringify({ seconds, vertices: mesh.vertexCount, width: atlas.width, height: atlas.height }));
api.destroyAtlas();
