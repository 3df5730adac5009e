-- POST /v1/traces: OTLP protobuf bodies of 50 spans (written by bench/run.py), each sent with a fresh
-- trace id so that every request stores a new trace.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local headers = api_headers("application/x-protobuf")
headers["x-mlflow-experiment-id"] = os.getenv("BENCH_EXPERIMENT")
local bodies, patterns = {}, {}

function thread_init()
  for n = 0, 399 do
    local body = read_file(string.format("otlp/%04d.pb", n))
    local tid = read_file(string.format("otlp/%04d.tid", n))
    bodies[#bodies + 1] = body
    patterns[#patterns + 1] = tid:gsub("[^%w]", "%%%0")
  end
end

local function random_bytes(count)
  local out = {}
  for i = 1, count do out[i] = string.char(math.random(1, 255)) end
  return table.concat(out)
end

request = function()
  local n = math.random(#bodies)
  local fresh = random_bytes(16):gsub("%%", "%%%%")
  local body = bodies[n]:gsub(patterns[n], fresh)
  return wrk.format("POST", "/v1/traces", headers, body)
end
