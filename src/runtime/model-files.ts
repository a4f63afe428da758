// Converts a tfjs LayersModel to the two files of a version (model.json + weights.bin) and back, through any store.
import type { LayersModel, io } from "@tensorflow/tfjs";
import type { TfModule } from "./backend.js";
import { MODEL_TOPOLOGY_FILE, MODEL_WEIGHTS_FILE } from "./metadata.js";
import { StoreError, type ModelStore } from "./store.js";

/** The tfjs "layers-model" JSON format with a single weights shard, as tfjs' own file handlers write it. */
export async function serializeModel(tf: TfModule, model: LayersModel): Promise<Map<string, Uint8Array | string>> {
  let artifacts: io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
    }),
  );
  if (!artifacts?.weightData || !artifacts.weightSpecs) throw new Error("tfjs produced no weights when saving the model");
  const modelJson = {
    format: "layers-model",
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
    convertedBy: null,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: [MODEL_WEIGHTS_FILE], weights: artifacts.weightSpecs }],
  };
  const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
  return new Map<string, Uint8Array | string>([
    [MODEL_TOPOLOGY_FILE, JSON.stringify(modelJson)],
    [MODEL_WEIGHTS_FILE, weights],
  ]);
}

export async function loadModel(tf: TfModule, store: ModelStore, model: string, version: string): Promise<LayersModel> {
  const where = `${model}/${version}/${MODEL_TOPOLOGY_FILE}`;
  let modelJson: { modelTopology?: object; weightsManifest?: { paths: string[]; weights: io.WeightsManifestEntry[] }[] };
  try {
    modelJson = JSON.parse((await store.readFile(model, version, MODEL_TOPOLOGY_FILE)).toString("utf8")) as typeof modelJson;
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw new StoreError(`${where}: invalid JSON: ${(err as Error).message}`, "io");
  }
  if (!modelJson.modelTopology || !Array.isArray(modelJson.weightsManifest)) {
    throw new StoreError(`${where}: not a tfjs layers model (needs modelTopology and weightsManifest)`, "io");
  }
  const weightSpecs: io.WeightsManifestEntry[] = [];
  const buffers: ArrayBuffer[] = [];
  for (const group of modelJson.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) {
      const bytes = await store.readFile(model, version, p);
      buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
    }
  }
  const weightData = tf.io.CompositeArrayBuffer.join(buffers);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs, weightData }));
}
