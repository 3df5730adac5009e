-- POST /api/v1/feedback:batch with 1,000 items over random bench traces (bodies built once per thread).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local ids = read_lines("trace_ids.txt")
local headers = api_headers("application/json")
local bodies = {}
local names = { "user_satisfaction", "relevance", "tone" }

function thread_init()
  for b = 1, 8 do
    local items = {}
    for i = 1, 1000 do
      local n = math.random(3)
      local value = ({ "true", string.format("%.3f", math.random()), '"friendly"' })[n]
      items[i] = '{"trace_id": "' .. ids[math.random(#ids)] .. '", "name": "' .. names[n] .. '", "value": ' ..
        value .. ', "source": {"source_type": "LLM_JUDGE", "source_id": "bench-judge"}}'
    end
    bodies[b] = '{"items": [' .. table.concat(items, ", ") .. ']}'
  end
end

local next_body = 0
request = function()
  next_body = next_body % #bodies + 1
  return wrk.format("POST", "/api/v1/feedback:batch", headers, bodies[next_body])
end
