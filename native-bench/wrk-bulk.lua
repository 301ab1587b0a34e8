-- wrk script: POSTs event bodies whose ids are unique per request, so that no layer can
-- answer from a cache. The body is built from parts made once in init(); per request only
-- the id stem changes (one table.concat), keeping wrk's own CPU per request small.
--
--   wrk -t1 -c50 -d10s --latency -s native-bench/wrk-bulk.lua http://127.0.0.1:PORT/v1/events/bulk -- 100
--
-- The argument after "--" is the number of events per request; 1 sends a single event
-- object (for /webhook/events or /v1/events), more send {"events": [...]}.

local counter = 0
local parts = {}
local id_slots = {}
local thread_tag = 0

function setup(thread)
  thread_tag = thread_tag + 1
  thread:set("tag", thread_tag)
end

local function event_tail(i)
  local types = { "page_view", "click", "purchase" }
  return string.format(
    '-%04d","event_type":"%s","source":"bench","user_id":"user-%d","timestamp":"%s","properties":{"path":"/products/%d","referrer":"https://www.example.com/landing","plan":"team","amount":%.2f,"session":"s-%d"}}',
    i, types[(i % 3) + 1], i % 997, os.date("!%Y-%m-%dT%H:%M:%S.000Z"), i % 50, (i % 100) * 1.25, i % 31)
end

function init(args)
  local events = tonumber(args[1]) or 100
  local single = events == 1
  parts[#parts + 1] = single and "" or '{"events":['
  for i = 0, events - 1 do
    parts[#parts + 1] = (i == 0 and "" or ",") .. '{"event_id":"'
    parts[#parts + 1] = "" -- the id stem goes here
    id_slots[#id_slots + 1] = #parts
    parts[#parts + 1] = event_tail(i)
  end
  parts[#parts + 1] = single and "" or "]}"
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  math.randomseed(os.time() + (tag or 0))
  stem = string.format("wrk%d-%d-", tag or 0, math.random(1, 1000000000))
end

function request()
  counter = counter + 1
  local id = stem .. counter
  for _, slot in ipairs(id_slots) do parts[slot] = id end
  return wrk.format(nil, nil, nil, table.concat(parts))
end
