-- wrk script for scripts/bench.sh (P3): every request POSTs a dissemination
-- for the next archive id of this thread's slice of IDS_FILE (one id a line),
-- so no two requests ask for the same AIP. Answers other than 201 are counted
-- per status and printed by done() as "non201 N" and "status S N" lines;
-- "reused N" counts requests sent after a thread ran out of fresh ids.
--
--   wrk -tT -cC -dD --latency -s bench-post.lua URL -- IDS_FILE TOKEN T

local threads = {}

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file, token, nthreads = args[1], args[2], tonumber(args[3])
  ids = {}
  local n = 0
  for line in io.lines(file) do
    if n % nthreads == index then
      ids[#ids + 1] = line
    end
    n = n + 1
  end
  nextid = 0
  sent = 0
  reused = 0
  non201 = 0
  statuses = ""
  counts = {}
  headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }
end

function request()
  nextid = nextid + 1
  if nextid > #ids then
    -- Out of fresh ids: start over (these answer 409, and are reported).
    nextid = 1
  end
  if sent >= #ids then
    reused = reused + 1
  end
  sent = sent + 1
  local body = '{"archiveId":"' .. ids[nextid] .. '","priority":50}'
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  if status ~= 201 then
    non201 = non201 + 1
    counts[status] = (counts[status] or 0) + 1
    local parts = {}
    for s, c in pairs(counts) do
      parts[#parts + 1] = s .. "=" .. c
    end
    statuses = table.concat(parts, ",")
  end
end

function done(summary, latency, requests)
  local total, reused, byStatus = 0, 0, {}
  for _, thread in ipairs(threads) do
    total = total + thread:get("non201")
    reused = reused + thread:get("reused")
    for s, c in string.gmatch(thread:get("statuses"), "(%d+)=(%d+)") do
      byStatus[s] = (byStatus[s] or 0) + tonumber(c)
    end
  end
  io.write(string.format("non201 %d\n", total))
  io.write(string.format("reused %d\n", reused))
  for s, c in pairs(byStatus) do
    io.write(string.format("status %s %d\n", s, c))
  end
end
