// MotionGuide canvas extension: colours the pack's nodes by stage and plays pose-map / SMPL-render previews
// (the standard `{"ui": {"images": [...]}}` of an `executed` message) as a looping animation, one frame at a
// time, instead of a grid of hundreds of thumbnails: on the pack's own nodes, and on Preview/Save Image nodes
// whose images come straight from a MotionGuide node (other previews keep ComfyUI's behaviour).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

export const NODE_PREFIX = "MotionGuide";
export const DEFAULT_FPS = 8;

// One hue per stage (category MotionGuide/<stage>); dark enough for the default dark theme.
export const STAGE_COLOURS = {
  loaders: { color: "#2f4f6f", bgcolor: "#1f3347" },
  pose: { color: "#2f6f4f", bgcolor: "#1f4733" },
  smpl: { color: "#5f3f7f", bgcolor: "#3d2952" },
  sampling: { color: "#7f5f2f", bgcolor: "#523d1f" },
  video: { color: "#6f2f3f", bgcolor: "#471f29" },
};

export function stageOf(category) {
  const parts = String(category || "").split("/");
  return parts[0] === NODE_PREFIX ? parts[1] || "" : "";
}

// Frames per second for playback: a node may report it as ui.fps = [n]; otherwise DEFAULT_FPS.
export function previewFps(output) {
  const fps = Array.isArray(output?.fps) ? Number(output.fps[0]) : Number(output?.fps);
  return Number.isFinite(fps) && fps > 0 ? Math.min(fps, 60) : DEFAULT_FPS;
}

export function advanceFrame(node) {
  const count = node.motionguideFrames || 0;
  if (count < 2 || node.motionguidePaused) return node.imageIndex;
  node.imageIndex = ((node.imageIndex ?? -1) + 1) % count;
  node.setDirtyCanvas?.(true, false);
  return node.imageIndex;
}

export function stopPlayback(node) {
  if (node.motionguideTimer) clearInterval(node.motionguideTimer);
  node.motionguideTimer = null;
}

export function startPlayback(node, count, fps) {
  stopPlayback(node);
  node.motionguideFrames = count;
  if (count < 2) return;
  node.imageIndex = 0; // a number shows one image; null would show the whole grid
  node.motionguideTimer = setInterval(() => advanceFrame(node), 1000 / fps);
}

// Core image nodes whose previews we animate when a MotionGuide node feeds them.
export const PREVIEW_NODES = ["PreviewImage", "SaveImage"];

function linkById(graph, id) {
  const links = graph?.links;
  if (!links || id == null) return null;
  return typeof links.get === "function" ? links.get(id) : links[id];
}

export function fedByMotionGuide(node) {
  const graph = node.graph ?? app.graph;
  return (node.inputs || []).some((input) => {
    const link = linkById(graph, input.link);
    const origin = link && graph?.getNodeById?.(link.origin_id);
    return String(origin?.type || origin?.comfyClass || "").startsWith(NODE_PREFIX);
  });
}

function chain(proto, name, after) {
  const original = proto[name];
  proto[name] = function (...args) {
    const result = original?.apply(this, args);
    after.apply(this, [result, ...args]);
    return result;
  };
}

// ComfyUI's templates browser lists a pack's templates in the server's file-system order (os.scandir) and shows
// each file name as its title and again as its description (with - and _ as spaces: our names have none). Ours
// are shown in this order, the main MimicMotion template first
// (scripts/workflow_specs.py WORKFLOWS; tests/test_web_extension.py keeps the two in step).
export const TEMPLATE_ORDER = [
  "MimicMotion, animate an image with a driving video",
  "SMPL 3D guidance, image and driving video",
  "SMPL motion file and a camera orbit",
  "SMPL maps guiding MimicMotion through a geometry adapter",
  "Long videos on a 12 to 16 GB GPU",
  "DisPose on MimicMotion driven by a 3D retarget",
  "SCAIL and SCAIL 2 guidance from a 3D retarget",
  "Wan2.2 Animate pose video from a 3D retarget",
  "MTVCrafter joints from a 3D retarget",
  "StableAnimator pose images from a 3D retarget",
];

// Reorder the pack's entry of a /workflow_templates answer ({module: [names]}); other packs are left alone.
export function orderTemplates(all) {
  const rank = (name) => {
    const i = TEMPLATE_ORDER.indexOf(name);
    return i < 0 ? TEMPLATE_ORDER.length : i;
  };
  for (const [module, names] of Object.entries(all || {})) {
    if (Array.isArray(names) && names.includes(TEMPLATE_ORDER[0])) {
      all[module] = [...names].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    }
  }
  return all;
}

export function orderPackTemplates(client) {
  const original = client?.getWorkflowTemplates;
  if (typeof original !== "function" || original.motionguideOrdered) return;
  const ordered = async function (...args) {
    return orderTemplates(await original.apply(this, args));
  };
  ordered.motionguideOrdered = true;
  client.getWorkflowTemplates = ordered;
}

export const extension = {
  name: "MotionGuide.Previews",

  setup() {
    orderPackTemplates(api);
  },

  async beforeRegisterNodeDef(nodeType, nodeData) {
    const name = String(nodeData?.name || "");
    if (PREVIEW_NODES.includes(name)) {
      chain(nodeType.prototype, "onExecuted", function (_result, output) {
        const images = Array.isArray(output?.images) ? output.images : [];
        if (fedByMotionGuide(this)) startPlayback(this, images.length, previewFps(output));
        else stopPlayback(this);
      });
      chain(nodeType.prototype, "onRemoved", function () {
        stopPlayback(this);
      });
      return;
    }
    if (!name.startsWith(NODE_PREFIX)) return;
    const colours = STAGE_COLOURS[stageOf(nodeData.category)];

    chain(nodeType.prototype, "onNodeCreated", function () {
      if (colours) {
        this.color = colours.color;
        this.bgcolor = colours.bgcolor;
      }
    });

    chain(nodeType.prototype, "onExecuted", function (_result, output) {
      const images = Array.isArray(output?.images) ? output.images : [];
      startPlayback(this, images.length, previewFps(output));
    });

    chain(nodeType.prototype, "onRemoved", function () {
      stopPlayback(this);
    });

    chain(nodeType.prototype, "onDrawForeground", function (_result, ctx) {
      const count = this.motionguideFrames || 0;
      if (count < 2 || !ctx || this.flags?.collapsed) return;
      const label = `${(this.imageIndex ?? 0) + 1}/${count}${this.motionguidePaused ? " (paused)" : ""}`;
      ctx.save();
      ctx.font = "11px sans-serif";
      ctx.fillStyle = "#ddd";
      ctx.textAlign = "right";
      ctx.fillText(label, this.size[0] - 6, this.size[1] - 6);
      ctx.restore();
    });

    const getMenu = nodeType.prototype.getExtraMenuOptions;
    nodeType.prototype.getExtraMenuOptions = function (canvas, options) {
      const result = getMenu?.apply(this, arguments);
      if ((this.motionguideFrames || 0) > 1) {
        options.push({
          content: this.motionguidePaused ? "Play preview frames" : "Pause preview frames",
          callback: () => {
            this.motionguidePaused = !this.motionguidePaused;
            this.setDirtyCanvas?.(true, false);
          },
        });
      }
      return result;
    };
  },
};

app.registerExtension(extension);
