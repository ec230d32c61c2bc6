-- benches/fleet-get.lua: wrk script for `filerep serve`: GET /v1/files/{sha256} of the file that
-- benches/fleet.rs recorded FLEET_BENCH sightings of (its SHA-256 is fixed). Used by benches/fleet-load.sh.
wrk.method = "GET"
wrk.path = "/v1/files/0100000000000000" .. string.rep("00", 23) .. "5a"
function done(summary, latency, requests)
  io.write(string.format("query: %d requests, %.0f/s, latency p50 %.2f ms, p99 %.2f ms, max %.2f ms; %d non-2xx\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.errors.status))
end
