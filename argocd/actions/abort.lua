-- Abort the running canary: a one-shot request the operator acts on once
-- (the id is acknowledged in status.requests.abort).
local os = require("os")
local status = obj.status or {}
if status.canaryImage == nil or status.canaryImage == "" then
  error("no canary runs", 0)
end
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["canary.atze.io/abort"] = "argocd-" .. os.date("!%Y%m%dT%H%M%SZ")
obj.metadata.annotations["canary.atze.io/requested-by"] = "argocd"
return obj
