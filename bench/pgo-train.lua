-- The request mix bench/pgo.sh trains strangler's profile-guided build on (a wrk script).
--
-- A migration's traffic, not the benchmark's one URL: every kind of route (prefix,
-- template, exact, method-restricted, the default), reads and writes with bodies, query
-- strings, client request ids, paths that need normalising, and a small share of
-- requests to an upstream that is down (502). The profile then weights the code a real
-- deployment runs, so the optimised binary is not tuned to `GET /api/bench` alone.
-- (No HEAD here: wrk would wait for the body its Content-Length announces; bench/pgo.sh
-- sends HEAD requests with curl.)

local requests = {}
local counter = 0

function init(args)
  local json = { ["Content-Type"] = "application/json" }
  local text = '{"text": "' .. string.rep("strangler ", 40) .. '"}'
  requests = {
    wrk.format("GET", "/api/thoughts/"),
    wrk.format("GET", "/api/thoughts/?search=docker&page=2"),
    wrk.format("GET", "/api/thoughts/42/"),
    wrk.format("GET", "/api/thoughts/42/", { ["X-Request-Id"] = "pgo-training-1" }),
    wrk.format("POST", "/api/me/thoughts/", json, text),
    wrk.format("GET", "/api/me/thoughts/"),
    wrk.format("POST", "/api/login/", json, '{"username": "bruce", "password": "robin"}'),
    wrk.format("GET", "/"),
    wrk.format("GET", "/thoughts/?page=3"),
    wrk.format("GET", "/static/style.css"),
    wrk.format("GET", "/api//thoughts/./13/../14/"),
    wrk.format("GET", "/api/thoughts/%7Euser/"),
    wrk.format("DELETE", "/api/me/thoughts/9/"),
    wrk.format("GET", "/search?q=microservices"),
    wrk.format("GET", "/api/bench"),
    wrk.format("GET", "/reports/2026/"), -- the upstream that is down: 502
  }
end

function request()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end
