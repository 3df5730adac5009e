-- Shared by the bench scripts: per-thread random seeds, data files, and a JSON summary line
-- (BENCH_JSON {...}) that bench/run.py reads.
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
end

function init(args)
  math.randomseed(os.time() * 1009 + (thread_id or 0) * 7919)
  if thread_init then thread_init() end
end

function data_path(name)
  return (os.getenv("BENCH_DATA") or "bench/data") .. "/" .. name
end

function read_lines(name)
  local lines = {}
  for line in io.lines(data_path(name)) do
    if line ~= "" then lines[#lines + 1] = line end
  end
  return lines
end

function read_file(name)
  local file = assert(io.open(data_path(name), "rb"))
  local content = file:read("*a")
  file:close()
  return content
end

function api_headers(content_type)
  local headers = { ["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY") }
  if content_type then headers["Content-Type"] = content_type end
  return headers
end

function random_hex(digits)
  local parts = {}
  for i = 1, digits / 4 do parts[i] = string.format("%04x", math.random(0, 65535)) end
  return table.concat(parts)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "non2xx": %d, "errors": %d, "p50_us": %d, ' ..
    '"p90_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
