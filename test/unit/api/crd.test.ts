// The committed CRD is what `make manifests` generates, and it reads well in `kubectl explain`.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CRD_FILES, buildModelDeploymentCrd, renderCrdYaml, updateApiReference } from "../../../src/api/index.js";

const repoRoot = new URL("../../../", import.meta.url);

interface JsonSchema {
  type?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  "x-kubernetes-validations"?: { rule: string; message: string; fieldPath?: string }[];
  [key: string]: unknown;
}

function openApiSchema(): JsonSchema {
  const crd = buildModelDeploymentCrd() as { spec: { versions: { schema: { openAPIV3Schema: JsonSchema } }[] } };
  return crd.spec.versions[0]!.schema.openAPIV3Schema;
}

/** Visits every schema node with its dotted path (`spec.serving.replicas`, `spec.monitoring.features[]`). */
function walk(node: JsonSchema, path: string, visit: (node: JsonSchema, path: string) => void): void {
  visit(node, path);
  for (const [key, child] of Object.entries(node.properties ?? {})) walk(child, path ? `${path}.${key}` : key, visit);
  if (node.items) walk(node.items, `${path}[]`, visit);
  if (typeof node.additionalProperties === "object") walk(node.additionalProperties, `${path}{}`, visit);
}

describe("generated CRD", () => {
  it.each(CRD_FILES)("committed %s matches `make manifests` output (run `make manifests` after editing src/api)", (file) => {
    const committed = readFileSync(new URL(file, repoRoot), "utf8");
    expect(committed).toBe(renderCrdYaml());
  });

  it("reads the same to a YAML 1.1 parser (kubectl, Helm): an enum value like Off is not a boolean there", () => {
    expect(parse(renderCrdYaml(), { version: "1.1" })).toEqual(buildModelDeploymentCrd());
  });

  it("docs/api.md carries the current field reference (run `make manifests` after editing src/api)", () => {
    const doc = readFileSync(new URL("docs/api.md", repoRoot), "utf8");
    expect(doc).toBe(updateApiReference(doc));
  });

  it("gives every spec and status field a description for kubectl explain", () => {
    const missing: string[] = [];
    const root = openApiSchema();
    for (const part of ["spec", "status"] as const) {
      walk(root.properties![part]!, part, (node, path) => {
        // Map values and int-or-string alternatives are described by their parent.
        if (path.endsWith("{}") || path.endsWith("[]")) return;
        if (!node.description) missing.push(path);
      });
    }
    expect(missing).toEqual([]);
  });

  it("is structural: no node mixes properties with additionalProperties, every node has a type", () => {
    const problems: string[] = [];
    walk(openApiSchema(), "", (node, path) => {
      if (node.properties && node.additionalProperties !== undefined) problems.push(`${path}: properties and additionalProperties`);
      const intOrString = node["x-kubernetes-int-or-string"] === true;
      if (!node.type && !intOrString && path !== "") problems.push(`${path}: no type`);
      for (const banned of ["const", "patternProperties", "$ref", "$id"]) if (banned in node) problems.push(`${path}: ${banned}`);
    });
    expect(problems).toEqual([]);
  });

  it("bounds every list and string a CEL rule reads, so the API server's cost estimate stays under its limit", () => {
    const unbounded: string[] = [];
    walk(openApiSchema(), "", (node, path) => {
      if (!node["x-kubernetes-validations"]) return;
      walk(node, path, (inner, innerPath) => {
        if (inner.type === "array" && inner.maxItems === undefined) unbounded.push(`${innerPath}: maxItems`);
        if (inner.type === "string" && inner.maxLength === undefined && inner.enum === undefined && inner.format === undefined) {
          unbounded.push(`${innerPath}: maxLength`);
        }
        if (inner.type === "object" && typeof inner.additionalProperties === "object" && inner.maxProperties === undefined) {
          unbounded.push(`${innerPath}: maxProperties`);
        }
      });
    });
    expect(unbounded).toEqual([]);
  });

  it("offers the printer columns, short name, status and scale subresources users expect", () => {
    const crd = parse(renderCrdYaml()) as {
      spec: {
        names: { shortNames: string[] };
        scope: string;
        versions: { additionalPrinterColumns: { name: string; priority?: number }[]; subresources: Record<string, unknown> }[];
      };
    };
    const version = crd.spec.versions[0]!;
    expect(crd.spec.scope).toBe("Namespaced");
    expect(crd.spec.names.shortNames).toContain("md");
    expect(version.additionalPrinterColumns.filter((c) => !c.priority).map((c) => c.name)).toEqual([
      "Model",
      "Version",
      "Ready",
      "Phase",
      "Drift",
      "Accuracy",
      "Age",
    ]);
    expect(version.subresources).toEqual({
      status: {},
      scale: { specReplicasPath: ".spec.serving.replicas", statusReplicasPath: ".status.replicas", labelSelectorPath: ".status.selector" },
    });
  });

  it("keys conditions by type (list-type map) as kstatus and server-side apply expect", () => {
    const conditions = openApiSchema().properties!.status!.properties!.conditions!;
    expect(conditions["x-kubernetes-list-type"]).toBe("map");
    expect(conditions["x-kubernetes-list-map-keys"]).toEqual(["type"]);
  });
});
