// Package nilcheck tells a nil interface value, and one that holds a nil
// pointer (such as the *authenticator.Keeper of a failed constructor), from
// a usable one, so that constructors can refuse it instead of panicking on
// the first call.
package nilcheck

import "reflect"

// Nil reports whether v is nil or an interface holding a nil pointer, map,
// slice, func or channel.
func Nil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return rv.IsNil()
	}
	return false
}
