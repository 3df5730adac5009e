-- GET the URL given to wrk with the bench API key (latency scenarios).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
