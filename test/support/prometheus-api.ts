// The Prometheus HTTP API as Grafana and a person use it: instant queries, series, label values, the parser.

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

interface ApiAnswer<T> {
  status: "success" | "error";
  data?: T;
  errorType?: string;
  error?: string;
}

interface AstNode {
  type?: string;
  name?: string;
  matchers?: { name: string; value: string; type: string }[];
  [key: string]: unknown;
}

export class PrometheusApi {
  constructor(readonly url: string) {}

  private async get<T>(path: string, params: [string, string][]): Promise<T> {
    const res = await fetch(`${this.url}${path}?${new URLSearchParams(params).toString()}`);
    const body = (await res.json()) as ApiAnswer<T>;
    if (body.status !== "success")
      throw new Error(`${path} ${JSON.stringify(Object.fromEntries(params))}: ${body.errorType ?? res.status}: ${body.error ?? "?"}`);
    return body.data as T;
  }

  /** An instant query's vector result; a syntax error or a non-vector result throws with Prometheus's message. */
  async query(expr: string): Promise<Sample[]> {
    const data = await this.get<{ resultType: string; result: Sample[] }>("/api/v1/query", [["query", expr]]);
    if (data.resultType !== "vector") throw new Error(`${expr}: a ${data.resultType}, not an instant vector`);
    return data.result;
  }

  /** Series matching `selector` over the last `lookbackSeconds`. */
  series(selector: string, lookbackSeconds = 600): Promise<Record<string, string>[]> {
    const now = Date.now() / 1000;
    return this.get("/api/v1/series", [
      ["match[]", selector],
      ["start", String(now - lookbackSeconds)],
      ["end", String(now)],
    ]);
  }

  labelValues(label: string, selector: string): Promise<string[]> {
    return this.get(`/api/v1/label/${encodeURIComponent(label)}/values`, [["match[]", selector]]);
  }

  /** Every vector selector in `expr` (inside range selectors and subqueries too), as parsed by Prometheus itself. */
  async selectors(expr: string): Promise<string[]> {
    const ast = await this.get<AstNode>("/api/v1/parse_query", [["query", expr]]);
    const found: string[] = [];
    const walk = (node: unknown) => {
      if (Array.isArray(node)) return node.forEach(walk);
      if (!node || typeof node !== "object") return;
      const n = node as AstNode;
      if ((n.type === "vectorSelector" || n.type === "matrixSelector") && n.matchers) {
        found.push(`{${n.matchers.map((m) => `${m.name}${m.type}${JSON.stringify(m.value)}`).join(", ")}}`);
        return;
      }
      for (const value of Object.values(n)) walk(value);
    };
    walk(ast);
    return found;
  }
}
