-- POST /api/3.0/mlflow/traces/{id}/assessments as mlflow.log_feedback sends it.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local ids = read_lines("trace_ids.txt")
local headers = api_headers("application/json")

request = function()
  local id = ids[math.random(#ids)]
  local now = os.date("!%Y-%m-%dT%H:%M:%S.000Z")
  local body = '{"assessment": {"assessment_name": "user_satisfaction", "trace_id": "' .. id .. '", ' ..
    '"source": {"source_type": "HUMAN", "source_id": "user_123"}, "create_time": "' .. now .. '", ' ..
    '"last_update_time": "' .. now .. '", "feedback": {"value": true}, "rationale": "bench", "valid": true}}'
  return wrk.format("POST", "/api/3.0/mlflow/traces/" .. id .. "/assessments", headers, body)
end
