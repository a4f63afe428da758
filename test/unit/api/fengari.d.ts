// The slice of fengari's C-style Lua API the Argo CD health check test uses.
declare module "fengari" {
  type LuaState = object;
  type LuaString = Uint8Array;
  const fengari: {
    to_luastring(s: string): LuaString;
    lua: {
      LUA_OK: number;
      lua_pushnil(L: LuaState): void;
      lua_pushboolean(L: LuaState, b: boolean): void;
      lua_pushinteger(L: LuaState, n: number): void;
      lua_pushnumber(L: LuaState, n: number): void;
      lua_pushstring(L: LuaState, s: LuaString): void;
      lua_createtable(L: LuaState, narr: number, nrec: number): void;
      lua_rawseti(L: LuaState, index: number, i: number): void;
      lua_setfield(L: LuaState, index: number, k: LuaString): void;
      lua_getfield(L: LuaState, index: number, k: LuaString): number;
      lua_setglobal(L: LuaState, name: LuaString): void;
      lua_pcall(L: LuaState, nargs: number, nresults: number, msgh: number): number;
      lua_tojsstring(L: LuaState, index: number): string;
      lua_type(L: LuaState, index: number): number;
      lua_pop(L: LuaState, n: number): void;
    };
    lauxlib: {
      luaL_newstate(): LuaState;
      luaL_loadstring(L: LuaState, s: LuaString): number;
    };
    lualib: { luaL_openlibs(L: LuaState): void };
  };
  export default fengari;
}
