-- benches/fleet-sightings.lua: wrk script for `filerep serve`: POST /v1/sightings, each request one
-- participant's observation of FLEET_FILES executables (default 100) out of a pool of 1,000 (what machines of
-- one fleet have in common), every request from another participant. Used by benches/fleet-load.sh.
local files_per_run = tonumber(os.getenv("FLEET_FILES") or "100")
local token = os.getenv("FLEET_TOKEN")
local hex = "0123456789abcdef"
local function sha(n, len)
  local t = {}
  local x = n * 2654435761 % 4294967296
  for i = 1, len do
    x = (x * 1103515245 + 12345) % 2147483648
    local k = (x % 16) + 1
    t[i] = hex:sub(k, k)
  end
  return table.concat(t)
end
local function file(n)
  return string.format(
    '{"sha256":"%s","sha1":"%s","md5":"%s","path":"/usr/lib/fleet/tool-%d","deleted":false,"cached":true,' ..
    '"processes":1,"parent":"systemd","command_line":"/usr/lib/fleet/tool-%d --daemon","owner":"root","privilege":"root",' ..
    '"platform":"64-bit","cpu_percent":0.5,"private_bytes":{"mean":1048576,"max":2097152},' ..
    '"virtual_bytes":{"mean":50000000,"max":60000000},"working_set":{"mean":3000000,"max":4000000},' ..
    '"peak_working_set":5000000,"threads":{"mean":4.0,"max":4},"handles":{"mean":12.0,"max":12}}',
    sha(n, 64), sha(n + 7, 40), sha(n + 13, 32), n, n)
end
-- FLEET_VARIANTS (default 10) variants of the executables a machine runs, built once.
local nvariants = tonumber(os.getenv("FLEET_VARIANTS") or "10")
local variants = {}
for v = 0, nvariants - 1 do
  local t = {}
  for i = 1, files_per_run do
    t[i] = file((v * 37 + i * 11) % 1000)
  end
  variants[v] = table.concat(t, ",")
end
-- FLEET_PARTICIPANTS=N: each wrk thread cycles through N participants (machines reporting again, each run
-- with a later start); unset, every request is a new participant (the worst case: every count moves).
local cycle = tonumber(os.getenv("FLEET_PARTICIPANTS") or "0")
local counter = 0
local thread_id = 0
function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end
function request()
  counter = counter + 1
  local who = counter
  if cycle > 0 then
    who = counter % cycle
  end
  local participant = string.format("%08x%08x%016x", tid or 0, os.time() % 4294967296, who)
  local s = counter
  local started = string.format("2025-%02d-%02dT%02d:%02d:%02dZ", 1 + math.floor(s / 2419200) % 12,
    1 + math.floor(s / 86400) % 28, math.floor(s / 3600) % 24, math.floor(s / 60) % 60, s % 60)
  local body = '{"schema_version":1,"participant":"' .. participant .. '","host":{"os_name":"Debian GNU/Linux",' ..
    '"os_version":"12","country":"DE","manufacturer":"Dell Inc."},"started_at":"' .. started .. '",' ..
    '"duration_secs":30.0,"samples":31,"hashed":0,"cached":0,"files":[' .. variants[counter % nvariants] ..
    '],"skipped":{"kernel_threads":0,"permission_denied":0,"vanished":0,"unhashable":0}}'
  return wrk.format("POST", "/v1/sightings",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, body)
end
local statuses = {}
function response(status)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  io.write(string.format("sightings: %d requests (%d files each), %.0f sightings/s\n", summary.requests,
    files_per_run, summary.requests * files_per_run / (summary.duration / 1e6)))
  io.write(string.format("latency p50 %.1f ms, p99 %.1f ms; errors: %d non-2xx\n", latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status))
end
