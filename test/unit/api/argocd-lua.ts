// Runs the Argo CD health check Lua from docs/gitops.md the way Argo CD does: `obj` is a global table
// built from the resource's JSON, and the chunk returns a table with `status` and `message`.
import { readFileSync } from "node:fs";
import fengari from "fengari";

const { lua, lauxlib, lualib, to_luastring } = fengari;
type LuaState = ReturnType<typeof lauxlib.luaL_newstate>;

const docPath = new URL("../../../docs/gitops.md", import.meta.url);
const marker = "<!-- argocd-health-lua:";

/** The ```lua block that follows the marker comment in docs/gitops.md. */
export function healthCheckLuaFromDocs(): string {
  const doc = readFileSync(docPath, "utf8");
  const at = doc.indexOf(marker);
  if (at < 0) throw new Error(`docs/gitops.md: marker "${marker}" not found`);
  const block = /```lua\n([\s\S]*?)\n```/.exec(doc.slice(at));
  if (!block) throw new Error("docs/gitops.md: no ```lua block after the health check marker");
  return block[1]!;
}

function pushJson(L: LuaState, value: unknown): void {
  if (value === null || value === undefined) lua.lua_pushnil(L);
  else if (typeof value === "boolean") lua.lua_pushboolean(L, value);
  else if (typeof value === "number") {
    if (Number.isInteger(value)) lua.lua_pushinteger(L, value);
    else lua.lua_pushnumber(L, value);
  } else if (typeof value === "string") lua.lua_pushstring(L, to_luastring(value));
  else if (Array.isArray(value)) {
    lua.lua_createtable(L, value.length, 0);
    value.forEach((item, i) => {
      pushJson(L, item);
      lua.lua_rawseti(L, -2, i + 1);
    });
  } else if (typeof value === "object") {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    lua.lua_createtable(L, 0, entries.length);
    for (const [key, item] of entries) {
      pushJson(L, item);
      lua.lua_setfield(L, -2, to_luastring(key));
    }
  } else throw new Error(`cannot pass a ${typeof value} to Lua`);
}

function field(L: LuaState, name: string): string | undefined {
  lua.lua_getfield(L, -1, to_luastring(name));
  const out = lua.lua_type(L, -1) === 4 /* LUA_TSTRING */ ? lua.lua_tojsstring(L, -1) : undefined;
  lua.lua_pop(L, 1);
  return out;
}

/** Evaluates `script` with `obj` set to a JSON round trip of `resource` (as Argo CD sees it). */
export function runHealthCheck(script: string, resource: unknown): { status?: string; message?: string } {
  const L = lauxlib.luaL_newstate();
  lualib.luaL_openlibs(L);
  pushJson(L, JSON.parse(JSON.stringify(resource)));
  lua.lua_setglobal(L, to_luastring("obj"));
  if (lauxlib.luaL_loadstring(L, to_luastring(script)) !== lua.LUA_OK) throw new Error(`Lua syntax: ${lua.lua_tojsstring(L, -1)}`);
  if (lua.lua_pcall(L, 0, 1, 0) !== lua.LUA_OK) throw new Error(`Lua error: ${lua.lua_tojsstring(L, -1)}`);
  if (lua.lua_type(L, -1) !== 5 /* LUA_TTABLE */) throw new Error("the health check did not return a table");
  return { status: field(L, "status"), message: field(L, "message") };
}
