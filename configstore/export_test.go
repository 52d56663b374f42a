package configstore

// TypeOf names the store behind s, for tests of NewRemote's choice.
func TypeOf(s ClientConfigStore) string {
	switch s.(opaque).s.(type) {
	case *autoRemote:
		return "auto"
	case *remote:
		return "flyte1"
	case *flyte2Remote:
		return "flyte2"
	}
	return "other"
}
