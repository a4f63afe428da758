// Picks the tfjs backend at run time: native TensorFlow when the image ships it, else WebAssembly, else plain JS.
import { createRequire } from "node:module";
import path from "node:path";

export type TfModule = typeof import("@tensorflow/tfjs");

/** What the caller may ask for; `auto` tries tfjs-node-gpu, tfjs-node, wasm, cpu in that order. */
export type BackendPreference = "auto" | "tensorflow" | "wasm" | "cpu";
export const BACKEND_PREFERENCES: readonly BackendPreference[] = ["auto", "tensorflow", "wasm", "cpu"];

export interface LoadedBackend {
  tf: TfModule;
  /** tfjs backend name as `tf.getBackend()` reports it: `tensorflow`, `wasm` or `cpu`. */
  backend: string;
  /** The npm package that provides the backend, e.g. `@tensorflow/tfjs-node-gpu`. */
  provider: string;
  /** Why a preferred backend was skipped, one line per attempt (logged by the caller). */
  skipped: string[];
}

let loaded: Promise<LoadedBackend> | undefined;

/** Loads tfjs once per process with the best backend available (env BALLAST_TF_BACKEND overrides `auto`). */
export function loadBackend(preference: BackendPreference = "auto"): Promise<LoadedBackend> {
  loaded ??= selectBackend(resolvePreference(preference));
  return loaded;
}

export function parseBackendPreference(value: string): BackendPreference {
  if ((BACKEND_PREFERENCES as readonly string[]).includes(value)) return value as BackendPreference;
  throw new Error(`backend: "${value}" is not one of ${BACKEND_PREFERENCES.join(", ")}`);
}

function resolvePreference(preference: BackendPreference): BackendPreference {
  const fromEnv = process.env.BALLAST_TF_BACKEND;
  if (preference === "auto" && fromEnv) return parseBackendPreference(fromEnv);
  return preference;
}

async function selectBackend(preference: BackendPreference): Promise<LoadedBackend> {
  const skipped: string[] = [];
  if (preference === "auto" || preference === "tensorflow") {
    for (const pkg of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
      const native = await importNative(pkg, skipped);
      if (native) return { tf: native, backend: native.getBackend(), provider: pkg, skipped };
    }
    if (preference === "tensorflow") throw new Error(`backend tensorflow requested but unavailable: ${skipped.join("; ")}`);
  }
  const tf = await import("@tensorflow/tfjs");
  if (preference === "auto" || preference === "wasm") {
    try {
      const wasm = await import("@tensorflow/tfjs-backend-wasm");
      wasm.setWasmPaths(wasmDirectory());
      if (await tf.setBackend("wasm")) {
        await tf.ready();
        return { tf, backend: "wasm", provider: "@tensorflow/tfjs-backend-wasm", skipped };
      }
      skipped.push("@tensorflow/tfjs-backend-wasm: setBackend returned false");
    } catch (err) {
      skipped.push(`@tensorflow/tfjs-backend-wasm: ${errorMessage(err)}`);
    }
    if (preference === "wasm") throw new Error(`backend wasm requested but unavailable: ${skipped.join("; ")}`);
  }
  await tf.setBackend("cpu");
  await tf.ready();
  return { tf, backend: "cpu", provider: "@tensorflow/tfjs-backend-cpu", skipped };
}

/** The .wasm binaries ship inside the package's dist/ folder; tfjs needs that folder as a path prefix. */
function wasmDirectory(): string {
  const require = createRequire(import.meta.url);
  return path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm")) + path.sep;
}

async function importNative(pkg: string, skipped: string[]): Promise<TfModule | undefined> {
  try {
    // A variable specifier keeps TypeScript from requiring the (uninstallable here) native packages.
    const mod = (await import(pkg)) as TfModule & { default?: TfModule };
    const tf = typeof mod.getBackend === "function" ? mod : mod.default;
    if (!tf) throw new Error("module does not export tfjs");
    await tf.ready();
    return tf;
  } catch (err) {
    skipped.push(`${pkg}: ${errorMessage(err).split("\n")[0]}`);
    return undefined;
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
