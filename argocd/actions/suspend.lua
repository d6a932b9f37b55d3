-- Suspend the canary: its weight and step clock freeze; checks keep
-- running and still roll a bad canary back.
obj.spec.suspend = true
return obj
