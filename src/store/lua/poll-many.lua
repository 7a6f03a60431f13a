-- The polls of many streams in one call (a single Redis; a Cluster polls each stream with poll.lua).
-- KEYS: per stream, what its keys start with (`<prefix>stream:{<id>}`): its snapshot hash, lease and
-- text are it and `:snap`, `:lease`, `:text` (one name per stream, not three: a single Redis routes
-- nothing by them). ARGV[1]: how many bytes of a text to read.
-- Returns per stream what poll.lua returns when the reply projection answers ({1, ...} or {2, ...}),
-- false for no such stream, or {0} when the poll must fold the events: the caller then polls that
-- stream alone with poll.lua (a stream an older version wrote; rare).
local text_bytes = tonumber(ARGV[1])
local out = {}
for s = 1, #KEYS do
  local base = KEYS[s]
  local answered = projected(base .. ':snap', base .. ':lease', base .. ':text', text_bytes)
  if answered == nil then answered = {0} end
  out[s] = answered
end
return out
