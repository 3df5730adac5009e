-- GET an HTML page as the signed-in bench staff user (latency scenarios).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
wrk.headers["Cookie"] = "sessionid=" .. os.getenv("BENCH_SESSION")
