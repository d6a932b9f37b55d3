// Package luatest runs canaryop's Argo CD scripts the way Argo CD v3 does
// (util/lua in Argo CD): a state without the standard libraries except
// package, base, table and a reduced os (time and date only), a one-second
// deadline, and the object as the global "obj", converted value by value
// from its JSON form. Tests of the health check and the resource actions
// use it; nothing else does.
package luatest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Run runs script on obj and returns what it returned (the top of the
// stack). The state is closed when done runs.
func Run(script string, obj map[string]any) (ret lua.LValue, done func(), err error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			l.Close()
			return nil, nil, fmt.Errorf("opening %s: %w", lib.name, err)
		}
	}
	openSafeOs(l)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	l.SetContext(ctx)
	done = func() { cancel(); l.Close() }
	l.SetGlobal("obj", ToLua(l, obj))
	if err := l.DoString(script); err != nil {
		done()
		return nil, nil, err
	}
	return l.Get(-1), done, nil
}

// openSafeOs installs os with only time and date, global and for
// require("os"), as Argo CD does.
func openSafeOs(l *lua.LState) {
	funcs := map[string]lua.LGFunction{
		"time": func(l *lua.LState) int { l.Push(lua.LNumber(time.Now().Unix())); return 1 },
		"date": func(l *lua.LState) int {
			f := l.OptString(1, "%c")
			now := time.Now()
			if len(f) > 0 && f[0] == '!' {
				now, f = now.UTC(), f[1:]
			}
			l.Push(lua.LString(strftime(now, f)))
			return 1
		},
	}
	l.SetGlobal("os", l.SetFuncs(l.NewTable(), funcs))
	l.PreloadModule("os", func(l *lua.LState) int { l.Push(l.SetFuncs(l.NewTable(), funcs)); return 1 })
}

// strftime knows the conversions the scripts use.
func strftime(t time.Time, f string) string {
	out := make([]byte, 0, len(f)+16)
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 == len(f) {
			out = append(out, f[i])
			continue
		}
		i++
		switch f[i] {
		case 'Y':
			out = t.AppendFormat(out, "2006")
		case 'm':
			out = t.AppendFormat(out, "01")
		case 'd':
			out = t.AppendFormat(out, "02")
		case 'H':
			out = t.AppendFormat(out, "15")
		case 'M':
			out = t.AppendFormat(out, "04")
		case 'S':
			out = t.AppendFormat(out, "05")
		default:
			out = append(out, '%', f[i])
		}
	}
	return string(out)
}

// String is a Lua value as Go text ("" for nil).
func String(v lua.LValue) string {
	if v == lua.LNil {
		return ""
	}
	return v.String()
}

// ToLua converts a value of an unstructured object as Argo CD does: maps to
// tables with string keys, slices to array tables, numbers to Lua numbers.
func ToLua(l *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case string:
		return lua.LString(x)
	case json.Number:
		return lua.LString(x)
	case int:
		return lua.LNumber(x)
	case int32:
		return lua.LNumber(x)
	case int64:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	case []any:
		tbl := l.CreateTable(len(x), 0)
		for _, item := range x {
			tbl.Append(ToLua(l, item))
		}
		return tbl
	case map[string]any:
		tbl := l.CreateTable(0, len(x))
		for k, item := range x {
			tbl.RawSetH(lua.LString(k), ToLua(l, item))
		}
		return tbl
	}
	return lua.LNil
}

// FromLua converts a returned table back to JSON-like Go values, as Argo
// CD's luajson does: a table with only keys 1..n is a list, any other
// table a map; an empty table is an empty list.
func FromLua(v lua.LValue) any {
	switch x := v.(type) {
	case lua.LBool:
		return bool(x)
	case lua.LString:
		return string(x)
	case lua.LNumber:
		if f := float64(x); f == float64(int64(f)) {
			return int64(f)
		}
		return float64(x)
	case *lua.LTable:
		if n := x.MaxN(); n > 0 || isEmpty(x) {
			list := make([]any, 0, n)
			for i := 1; i <= n; i++ {
				list = append(list, FromLua(x.RawGetInt(i)))
			}
			return list
		}
		m := map[string]any{}
		x.ForEach(func(k, val lua.LValue) { m[k.String()] = FromLua(val) })
		return m
	}
	return nil
}

func isEmpty(t *lua.LTable) bool {
	k, _ := t.Next(lua.LNil)
	return k == lua.LNil
}
