-- Allow a failed image again: spec.image when it is recorded as failed,
-- else the newest failure record. A one-shot request the operator acts on
-- once; with write-back the record's removal is written to Git.
local os = require("os")
local spec = obj.spec or {}
local status = obj.status or {}

local function recorded(list, image)
  if list == nil then
    return false
  end
  for _, f in ipairs(list) do
    if f.image == image then
      return true
    end
  end
  return false
end

local image = nil
if spec.image ~= nil and (recorded(spec.failedImages, spec.image) or recorded(status.failedImages, spec.image)) then
  image = spec.image
elseif status.failedImages ~= nil and #status.failedImages > 0 then
  image = status.failedImages[#status.failedImages].image
elseif spec.failedImages ~= nil and #spec.failedImages > 0 then
  image = spec.failedImages[#spec.failedImages].image
end
if image == nil then
  error("no image is recorded as failed", 0)
end
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["canary.atze.io/retry"] = "argocd-" .. os.date("!%Y%m%dT%H%M%SZ") .. " " .. image
obj.metadata.annotations["canary.atze.io/requested-by"] = "argocd"
return obj
