// The mesh viewer: three.js with orbit controls, texture (a textured GLB's
// own material), clay or normal shading, wireframe, and three lighting
// presets. A preset's environment is a small
// procedural scene rendered here into a cube map (nothing is downloaded, so
// it works offline); the mesh is lit by that map's irradiance, as a
// spherical-harmonics light probe, and by a key light where the
// environment's brightest source is. The irradiance is what a matte clay
// shows of an environment; a prefiltered specular map (three's
// PMREMGenerator) would add little to it and takes seconds on the CPU-drawn
// WebGL of machines without a GPU, where a light probe takes milliseconds.
import * as THREE from "three";
import { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";
import { GLTFLoader } from "three/examples/jsm/loaders/GLTFLoader.js";
import { RoomEnvironment } from "three/examples/jsm/environments/RoomEnvironment.js";
import { LightProbeGenerator } from "three/examples/jsm/lights/LightProbeGenerator.js";

// skyDome is an environment scene: a sphere coloured from ground through
// horizon to zenith, and optionally a sun, a small disc brighter than white
// so that it lights the mesh as a key light would.
function skyDome({ zenith, horizon, ground, sun }) {
  const scene = new THREE.Scene();
  const geometry = new THREE.SphereGeometry(10, 48, 24);
  const colors = [];
  const [z, h, g] = [zenith, horizon, ground].map((c) => new THREE.Color(c));
  const pos = geometry.attributes.position;
  for (let i = 0; i < pos.count; i++) {
    const y = pos.getY(i) / 10;
    const c = y >= 0 ? h.clone().lerp(z, Math.pow(y, 0.6)) : h.clone().lerp(g, Math.min(1, -y * 4));
    colors.push(c.r, c.g, c.b);
  }
  geometry.setAttribute("color", new THREE.Float32BufferAttribute(colors, 3));
  scene.add(new THREE.Mesh(geometry, new THREE.MeshBasicMaterial({ vertexColors: true, side: THREE.BackSide })));
  if (sun) {
    const disc = new THREE.Mesh(new THREE.SphereGeometry(0.6, 16, 8),
      new THREE.MeshBasicMaterial({ color: new THREE.Color(sun.color).multiplyScalar(sun.intensity) }));
    disc.position.copy(sun.direction).normalize().multiplyScalar(9);
    scene.add(disc);
  }
  return scene;
}

const SUN = new THREE.Vector3(0.6, 0.8, 0.4);

// LIGHTING names each preset: the scene its environment map is rendered
// from and the strength of its irradiance, its key light (colour,
// intensity, direction towards the light) and the background behind the
// mesh.
export const LIGHTING = {
  studio: {
    background: 0xe9ebf0,
    scene: () => new RoomEnvironment(),
    irradiance: 0.35,
    key: { color: 0xffffff, intensity: 1.8, direction: new THREE.Vector3(-0.6, 1, 0.7) },
  },
  outdoor: {
    background: 0xcfe0f2,
    scene: () => skyDome({ zenith: 0x2f6db5, horizon: 0xd8e6f3, ground: 0x5a4a36,
      sun: { color: 0xfff1d6, intensity: 60, direction: SUN } }),
    irradiance: 0.6,
    key: { color: 0xfff1d6, intensity: 2.6, direction: SUN },
  },
  neutral: {
    background: 0x9a9da4,
    scene: () => skyDome({ zenith: 0xffffff, horizon: 0xb8b8b8, ground: 0x555555 }),
    irradiance: 1,
    key: { color: 0xffffff, intensity: 0.5, direction: new THREE.Vector3(0, 0.3, 1) },
  },
};

// ENV_SIZE is the cube map's face size: irradiance is smooth, a coarse map holds it.
const ENV_SIZE = 32;

export class Viewer {
  constructor(container) {
    this.container = container;
    this.renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(window.devicePixelRatio);
    container.appendChild(this.renderer.domElement);
    this.probes = new Map();
    this.scene = new THREE.Scene();
    this.lights = new THREE.Group();
    this.scene.add(this.lights);
    this.camera = new THREE.PerspectiveCamera(40, 4 / 3, 0.01, 100);
    this.camera.position.set(1.6, 1.1, 2.2);
    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.enableDamping = true;
    this.shading = "clay";
    this.wireframe = false;
    this.mesh = null;
    this.setLighting("studio");
    // Frames are drawn when something changed (the controls, while they
    // move or glide, say so), not continuously: an idle page costs nothing.
    this.controls.addEventListener("change", () => this.redraw());
    new ResizeObserver(() => this.resize()).observe(container);
    this.resize();
  }

  redraw() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.controls.update();
      this.renderer.render(this.scene, this.camera);
    });
  }

  resize() {
    const w = this.container.clientWidth, h = this.container.clientHeight;
    if (!w || !h) return;
    this.renderer.setSize(w, h, false);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    // Resizing clears the canvas: draw again before this frame is painted.
    this.renderer.render(this.scene, this.camera);
  }

  // setLighting switches the background at once and the lights when they
  // are known: the environment is rendered and its irradiance measured once
  // per preset, when a mesh first needs it.
  setLighting(name) {
    this.lighting = name;
    this.scene.background = new THREE.Color(LIGHTING[name].background);
    this.redraw();
    return this.mesh ? this.light() : Promise.resolve();
  }

  async light() {
    const name = this.lighting;
    const preset = LIGHTING[name];
    if (!this.probes.has(name)) {
      const target = new THREE.WebGLCubeRenderTarget(ENV_SIZE, { type: THREE.HalfFloatType });
      const environment = preset.scene();
      new THREE.CubeCamera(0.1, 100, target).update(this.renderer, environment);
      this.probes.set(name, LightProbeGenerator.fromCubeRenderTarget(this.renderer, target).finally(() => {
        target.dispose();
        environment.traverse((o) => {
          if (o.geometry) o.geometry.dispose();
          if (o.material) o.material.dispose();
        });
      }));
    }
    const probe = await this.probes.get(name);
    if (this.lighting !== name) return; // another preset was chosen meanwhile
    const key = new THREE.DirectionalLight(preset.key.color, preset.key.intensity);
    key.position.copy(preset.key.direction).normalize().multiplyScalar(10);
    const irradiance = probe.clone();
    irradiance.intensity = preset.irradiance;
    this.lights.clear();
    this.lights.add(irradiance, key);
    this.redraw();
  }

  setShading(shading, wireframe) {
    this.shading = shading;
    this.wireframe = wireframe;
    if (this.mesh) this.applyShading();
  }

  // Texture draws the GLB's own material (its base colour texture lit by
  // the environment); clay is a matte grey lit by the environment; normals
  // colour each face by its direction, whatever the lighting. The
  // container's data-texture names the size of the texture drawn, if any.
  applyShading() {
    const { wireframe } = this;
    let drawn = "";
    this.mesh.traverse((o) => {
      if (!o.isMesh) return;
      const own = o.userData.ownMaterial;
      if (o.material !== own) o.material.dispose();
      if (this.shading === "texture") {
        o.material = own;
        o.material.wireframe = wireframe;
        const image = own.map && own.map.image;
        if (image) drawn = `${image.width}x${image.height}`;
      } else {
        o.material = this.shading === "normal"
          ? new THREE.MeshNormalMaterial({ wireframe, side: THREE.DoubleSide })
          : new THREE.MeshStandardMaterial({ color: 0xb9bcc4, roughness: 0.55, metalness: 0.05, wireframe, side: THREE.DoubleSide });
      }
    });
    if (drawn) this.container.dataset.texture = drawn;
    else delete this.container.dataset.texture;
    this.redraw();
  }

  // show replaces the mesh with a GLB's, frames it, lights it, and answers
  // its vertex and face counts, its bounding box in model units, and
  // whether it is textured. A textured mesh is shown in its texture; an
  // untextured one in clay when the texture was shown before.
  async show(glb) {
    const gltf = await new GLTFLoader().parseAsync(glb, "");
    if (this.mesh) {
      this.scene.remove(this.mesh);
      this.mesh.traverse((o) => {
        if (!o.isMesh) return;
        o.geometry.dispose();
        if (o.material !== o.userData.ownMaterial) o.material.dispose();
        disposeMaterial(o.userData.ownMaterial);
      });
    }
    this.mesh = gltf.scene;
    let vertices = 0, faces = 0, textured = false;
    this.mesh.traverse((o) => {
      if (!o.isMesh) return;
      const g = o.geometry;
      vertices += g.attributes.position.count;
      faces += (g.index ? g.index.count : g.attributes.position.count) / 3;
      o.userData.ownMaterial = o.material;
      if (o.material.map) textured = true;
    });
    if (textured) this.shading = "texture";
    else if (this.shading === "texture") this.shading = "clay";
    const box = new THREE.Box3().setFromObject(this.mesh);
    const size = box.getSize(new THREE.Vector3());
    const center = box.getCenter(new THREE.Vector3());
    const radius = Math.max(size.x, size.y, size.z) || 1;
    this.controls.target.copy(center);
    this.camera.position.copy(center).add(new THREE.Vector3(0.9, 0.6, 1.3).multiplyScalar(radius * 1.4));
    this.camera.near = radius / 100;
    this.camera.far = radius * 100;
    this.camera.updateProjectionMatrix();
    this.scene.add(this.mesh);
    this.applyShading();
    await this.light();
    return { vertices, faces, min: box.min, max: box.max, size, textured };
  }
}

// disposeMaterial frees a material and the textures it holds.
function disposeMaterial(material) {
  for (const value of Object.values(material)) {
    if (value && value.isTexture) value.dispose();
  }
  material.dispose();
}
