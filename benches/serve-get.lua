-- benches/serve-get.lua: wrk script for `filerep serve`: GET /v1/files/{sha256}, half of them hashes the store
-- holds (read from the file named by $SERVE_LOAD_HITS, one a line), half random ones it does not.
-- Used by benches/serve-load.sh.
local hits = {}
for line in io.lines(os.getenv("SERVE_LOAD_HITS")) do
  hits[#hits + 1] = line
end
math.randomseed(os.time() + math.floor(os.clock() * 1e6))
local hex = "0123456789abcdef"

local function miss()
  local t = {}
  for i = 1, 64 do
    local k = math.random(1, 16)
    t[i] = hex:sub(k, k)
  end
  return table.concat(t)
end

request = function()
  local h
  if math.random() < 0.5 then
    h = hits[math.random(1, #hits)]
  else
    h = miss()
  end
  return wrk.format("GET", "/v1/files/" .. h)
end
