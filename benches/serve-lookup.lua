-- benches/serve-lookup.lua: wrk script for `filerep serve`: POST /v1/lookup with 1,000 hashes, 500 the store
-- holds (the first lines of $SERVE_LOAD_HITS) and 500 it does not. Used by benches/serve-load.sh.
local hashes = {}
for line in io.lines(os.getenv("SERVE_LOAD_HITS")) do
  hashes[#hashes + 1] = '"' .. line .. '"'
  if #hashes >= 500 then
    break
  end
end
math.randomseed(42)
local hex = "0123456789abcdef"
while #hashes < 1000 do
  local t = {}
  for i = 1, 64 do
    local k = math.random(1, 16)
    t[i] = hex:sub(k, k)
  end
  hashes[#hashes + 1] = '"' .. table.concat(t) .. '"'
end
wrk.method = "POST"
wrk.path = "/v1/lookup"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"hashes": [' .. table.concat(hashes, ",") .. ']}'
