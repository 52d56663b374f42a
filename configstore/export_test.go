package configstore

// ServiceOf is the service an auto store (NewRemote's default) found the
// server to serve, ServiceAuto while it does not know.
func ServiceOf(s ClientConfigStore) Service {
	return s.(opaque).ClientConfigStore.(*autoRemote).Service()
}

// TypeOf names the store behind s, for tests of NewRemote's choice.
func TypeOf(s ClientConfigStore) string {
	switch s.(opaque).ClientConfigStore.(type) {
	case *autoRemote:
		return "auto"
	case *remote:
		return "flyte1"
	case *flyte2Remote:
		return "flyte2"
	}
	return "other"
}
