-- Resume a suspended canary.
obj.spec.suspend = false
return obj
