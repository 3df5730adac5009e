-- POST /api/v1/traces: a new trace with 5 spans per request.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local headers = api_headers("application/json")
local experiment = os.getenv("BENCH_EXPERIMENT")

request = function()
  local start = os.time() * 1000000000 + math.random(0, 999999) * 1000
  local root = random_hex(12) .. "0000"
  local spans = {}
  for n = 0, 4 do
    local span_id = root:sub(1, 12) .. string.format("%04x", n)
    spans[#spans + 1] = string.format(
      '{"span_id": "%s", "parent_span_id": %s, "name": "%s", "span_type": "%s", "start_time_ns": %d, ' ..
      '"end_time_ns": %d, "status_code": "OK", "inputs": {"question": "How do I rotate an API key?", "step": %d}, ' ..
      '"outputs": {"answer": "Create a new key, deploy it, then revoke the old one.", "step": %d}, ' ..
      '"attributes": {"model": "gpt-4o-mini"}}',
      span_id, n == 0 and "null" or ('"' .. root .. '"'), n == 0 and "rag_pipeline" or ("step_" .. n),
      n == 0 and "CHAIN" or "LLM", start + n * 1000000, start + (n + 1) * 1000000 + (n == 0 and 5000000 or 0), n, n)
  end
  local body = '{"experiment_id": "' .. experiment .. '", "trace_id": "tr-' .. random_hex(32) .. '", ' ..
    '"metadata": {"mlflow.trace.session": "bench-session", "mlflow.trace.user": "bench-user"}, ' ..
    '"spans": [' .. table.concat(spans, ", ") .. ']}'
  return wrk.format("POST", "/api/v1/traces", headers, body)
end
