-- An LL-HLS audience for wrk 4.1 (bench/wrk_audience.py starts it).
--
-- wrk's URL is a space's media playlist through the edge (…/media/{space}/live.m3u8).
-- Each wrk connection is one listener, and sends two pipelined requests per round:
--
--   1. the blocking playlist reload for the next part, live.m3u8?_HLS_msn=M&_HLS_part=P
--      (the edge and the origin hold it until part M.P exists), then
--   2. that part itself (the preload hint's URI, e.g. part/M.P.m4s), which the server
--      answers as soon as the reload has been answered, since the part then exists.
--
-- so one connection makes 2 requests per part (0.128 s parts: ~15.6 requests/s), as the
-- Python simulated listener (pnyx loadtest listeners, low latency) and an hls.js player
-- in low-latency mode do. The next round starts when both answers are in.
--
-- wrk's Lua state is per thread, not per connection: every connection of a thread asks
-- for what the thread last learnt (the newest preload hint seen in any playlist
-- answer). All listeners of a space want the same next part, so this is what each of
-- them would ask on its own; a connection that fell behind jumps to the newest part (a
-- player that skips forward) rather than fetching the ones it missed.
--
-- Before the first playlist answer (no hint known yet) a round is two plain
-- live.m3u8 reloads. The playlist is parsed just enough to know the next part: the
-- #EXT-X-PRELOAD-HINT (URI …/M.P.m4s), or else the media sequence + the segments listed
-- (the next segment's number) and the #EXT-X-PART lines after the last segment (the next
-- part's index), with the last listed part as the second request (one part behind
-- the one the reload waits for: a playlist without hints says nothing of the next URI).
--
-- Like a browser, every request says `Accept-Encoding: gzip`, and the edge sends playlists
-- as the node zipped them (once per version): a gzipped playlist is inflated here (zlib
-- through LuaJIT's FFI) only when its bytes differ from the last playlist this thread
-- read, so the listeners of a thread pay one inflate per playlist version, not per answer
-- (the edge's CPU, not the load generator's, is what the benches measure).
--
-- The counters of each thread are summed in done() and written as JSON to the file named
-- by the environment variable PNYX_WRK_REPORT (nothing written when it is unset).

local ffi = require("ffi")
ffi.cdef[[
typedef struct {
   const unsigned char *next_in; unsigned int avail_in; unsigned long total_in;
   unsigned char *next_out; unsigned int avail_out; unsigned long total_out;
   const char *msg; void *state; void *zalloc; void *zfree; void *opaque;
   int data_type; unsigned long adler; unsigned long reserved;
} pnyx_z_stream;
const char *zlibVersion(void);
int inflateInit2_(pnyx_z_stream *strm, int windowBits, const char *version, int stream_size);
int inflate(pnyx_z_stream *strm, int flush);
int inflateEnd(pnyx_z_stream *strm);
]]
local zlib = ffi.load("libz.so.1")
local OUT_SIZE = 1024 * 1024        -- a playlist is a few kB; more is an error
local out_buf = ffi.new("unsigned char[?]", OUT_SIZE)

-- The bytes of a gzip body, inflated; nil if they are not a whole gzip stream.
local function gunzip(data)
   local z = ffi.new("pnyx_z_stream")
   if zlib.inflateInit2_(z, 15 + 16, zlib.zlibVersion(), ffi.sizeof(z)) ~= 0 then
      return nil
   end
   z.next_in = ffi.cast("const unsigned char *", data)
   z.avail_in = #data
   z.next_out = out_buf
   z.avail_out = OUT_SIZE
   local rc = zlib.inflate(z, 4)     -- Z_FINISH
   local n = tonumber(z.total_out)
   zlib.inflateEnd(z)
   if rc ~= 1 then                    -- Z_STREAM_END
      return nil
   end
   return ffi.string(out_buf, n)
end

local GZIP = {["Accept-Encoding"] = "gzip"}

local base = nil        -- the playlist's folder: "/media/{space}/"
local playlist = nil    -- the playlist's path
local next_msn, next_part = -1, -1
local round = nil       -- the pipelined requests of a round for the current next part
local last_body = nil

-- counters, read by done() through thread:get()
playlists = 0           -- playlist answers (200)
parsed = 0              -- distinct playlist bodies parsed
parts = 0               -- part answers (200)
advances = 0            -- times the next part moved forward
first_msn, first_part = -1, -1
last_msn, last_part = -1, -1
status_4xx = 0
status_5xx = 0
other = 0               -- 2xx answers that were neither a playlist nor a part
gzipped = 0             -- playlist answers that came gzipped
inflated = 0            -- of those, inflated (a version not seen before)
bad_gzip = 0            -- gzipped answers that did not inflate

local function plain_round()
   local r = wrk.format("GET", playlist, GZIP)
   return r .. r
end

function init(args)
   playlist = wrk.path
   base = string.match(playlist, "^(.*/)") or "/"
   round = plain_round()
end

function request()
   return round
end

-- The next part of a playlist: (msn, part, uri of that part or of the last listed one).
local function next_of(body)
   local uri = string.match(body, '#EXT%-X%-PRELOAD%-HINT:[^\n]*URI="([^"]*)"')
   if uri then
      local m, p = string.match(uri, "(%d+)%.(%d+)%.m4s$")
      if m then
         return tonumber(m), tonumber(p), uri
      end
   end
   local seq = tonumber(string.match(body, "#EXT%-X%-MEDIA%-SEQUENCE:(%d+)")) or 0
   local segments, open, last_uri = 0, 0, nil
   for line in string.gmatch(body, "[^\n]+") do
      if string.sub(line, 1, 1) ~= "#" then
         segments = segments + 1
         open = 0
      elseif string.sub(line, 1, 12) == "#EXT-X-PART:" then
         open = open + 1
         last_uri = string.match(line, 'URI="([^"]*)"') or last_uri
      end
   end
   return seq + segments, open, last_uri
end

local function learn(body)
   parsed = parsed + 1
   local m, p, uri = next_of(body)
   if m < next_msn or (m == next_msn and p <= next_part) then
      return
   end
   if next_msn >= 0 then
      advances = advances + 1
   else
      first_msn, first_part = m, p
   end
   next_msn, next_part = m, p
   last_msn, last_part = m, p
   local reload = wrk.format("GET", playlist .. "?_HLS_msn=" .. m .. "&_HLS_part=" .. p, GZIP)
   if uri == nil then
      round = reload .. reload
   elseif string.sub(uri, 1, 1) == "/" then
      round = reload .. wrk.format("GET", uri, GZIP)
   else
      round = reload .. wrk.format("GET", base .. uri, GZIP)
   end
end

function response(status, headers, body)
   if status >= 500 then
      status_5xx = status_5xx + 1
      return
   elseif status >= 400 then
      status_4xx = status_4xx + 1
      return
   end
   local encoding = headers["Content-Encoding"] or headers["content-encoding"]
   if body ~= nil and encoding == "gzip" then
      gzipped = gzipped + 1
      if body ~= last_body then
         local text = gunzip(body)
         if text == nil then
            bad_gzip = bad_gzip + 1
            return
         end
         inflated = inflated + 1
         if string.sub(text, 1, 7) ~= "#EXTM3U" then
            other = other + 1
            return
         end
         last_body = body
         learn(text)
      end
      playlists = playlists + 1
   elseif body == nil then
      other = other + 1
   elseif string.sub(body, 1, 7) == "#EXTM3U" then
      playlists = playlists + 1
      if body ~= last_body then
         last_body = body
         learn(body)
      end
   elseif status == 200 then
      parts = parts + 1
   else
      other = other + 1
   end
end

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

local function sum(name)
   local total = 0
   for _, t in ipairs(threads) do
      total = total + (t:get(name) or 0)
   end
   return total
end

local function each(name)
   local out = {}
   for _, t in ipairs(threads) do
      table.insert(out, tostring(t:get(name) or -1))
   end
   return "[" .. table.concat(out, ",") .. "]"
end

function done(summary, latency, requests)
   local path = os.getenv("PNYX_WRK_REPORT")
   if path == nil or path == "" then
      return
   end
   local e = summary.errors
   local fields = {
      string.format('"duration_us":%d', summary.duration),
      string.format('"requests":%d', summary.requests),
      string.format('"bytes":%d', summary.bytes),
      string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
                    e.connect, e.read, e.write, e.status, e.timeout),
      string.format('"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d}',
                    latency.mean, latency.max, latency:percentile(50),
                    latency:percentile(90), latency:percentile(99)),
   }
   for _, name in ipairs({"playlists", "parsed", "parts", "advances", "status_4xx",
                          "status_5xx", "other", "gzipped", "inflated", "bad_gzip"}) do
      table.insert(fields, string.format('"%s":%d', name, sum(name)))
   end
   for _, name in ipairs({"first_msn", "first_part", "last_msn", "last_part"}) do
      table.insert(fields, string.format('"%s":%s', name, each(name)))
   end
   local f = assert(io.open(path, "w"))
   f:write("{" .. table.concat(fields, ",") .. "}\n")
   f:close()
end
