-- POST /api/v1/traces/{id}/feedback on random bench traces.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local ids = read_lines("trace_ids.txt")
local headers = api_headers("application/json")

request = function()
  local value = math.random() < 0.7 and "true" or "false"
  local body = '{"name": "user_satisfaction", "value": ' .. value .. ', "rationale": "bench", ' ..
    '"source": {"source_type": "HUMAN", "source_id": "bench-user-' .. math.random(1000) .. '"}}'
  return wrk.format("POST", "/api/v1/traces/" .. ids[math.random(#ids)] .. "/feedback", headers, body)
end
