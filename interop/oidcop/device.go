package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
	"sync"
)

// devicePath is the verification URI: where a person enters (or finds
// filled in) the user code.
const devicePath = "/device"

const sessionCookie = "oidcop_device"

var pageTemplates = template.Must(template.New("").Parse(`
{{define "enter"}}<!doctype html><title>Device login</title>
<p>{{.Error}}</p>
<form method="get" action="/device">
<label>Code <input name="user_code"></label> <button>Next</button>
</form>{{end}}

{{define "login"}}<!doctype html><title>Sign in</title>
<p>{{.Error}}</p>
<form method="post" action="/device/login">
<input type="hidden" name="user_code" value="{{.UserCode}}">
<p>Code: <b>{{.UserCode}}</b></p>
<label>User <input name="username"></label>
<label>Password <input type="password" name="password"></label>
<button>Sign in</button>
</form>{{end}}

{{define "confirm"}}<!doctype html><title>Allow access?</title>
<p>{{.User}}, {{.ClientID}} asks for: {{range .Scopes}}{{.}} {{end}}</p>
<form method="post" action="/device/confirm">
<button name="action" value="allow">Allow</button>
<button name="action" value="deny">Deny</button>
</form>{{end}}

{{define "done"}}<!doctype html><title>Done</title>
<p id="result">{{.}}</p>{{end}}
`))

// session is a signed-in person who is about to decide on a user code.
type session struct {
	userCode string
	user     string
}

// devicePages are the verification pages: enter the code, sign in, allow
// or deny. It is safe for concurrent use.
type devicePages struct {
	st *storage

	mu       sync.Mutex // guards sessions
	sessions map[string]session
}

func newDevicePages(st *storage) (*devicePages, error) {
	return &devicePages{st: st, sessions: make(map[string]session)}, nil
}

func (p *devicePages) register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+devicePath, p.enter)
	mux.HandleFunc("POST "+devicePath+"/login", p.login)
	mux.HandleFunc("POST "+devicePath+"/confirm", p.confirm)
}

// enter shows the code form, or the sign-in form for a code given in the
// URL (verification_uri_complete).
func (p *devicePages) enter(w http.ResponseWriter, r *http.Request) {
	code := strings.TrimSpace(r.URL.Query().Get("user_code"))
	if code == "" {
		render(w, http.StatusOK, "enter", map[string]string{})
		return
	}
	if _, err := p.st.userCodeState(code); err != nil {
		render(w, http.StatusNotFound, "enter", map[string]string{"Error": err.Error()})
		return
	}
	render(w, http.StatusOK, "login", map[string]string{"UserCode": code})
}

// login checks the person's password and shows what the client asks for.
func (p *devicePages) login(w http.ResponseWriter, r *http.Request) {
	code := strings.TrimSpace(r.PostFormValue("user_code"))
	user := r.PostFormValue("username")
	if err := p.st.checkPassword(user, r.PostFormValue("password")); err != nil {
		render(w, http.StatusUnauthorized, "login", map[string]string{"UserCode": code, "Error": err.Error()})
		return
	}
	state, err := p.st.userCodeState(code)
	if err != nil {
		render(w, http.StatusNotFound, "enter", map[string]string{"Error": err.Error()})
		return
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	p.mu.Lock()
	p.sessions[id] = session{userCode: code, user: user}
	p.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: devicePath, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	render(w, http.StatusOK, "confirm", map[string]any{"User": user, "ClientID": state.ClientID, "Scopes": state.Scopes})
}

// confirm records the person's decision for the signed-in session's code.
func (p *devicePages) confirm(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		render(w, http.StatusUnauthorized, "enter", map[string]string{"Error": "sign in first"})
		return
	}
	p.mu.Lock()
	s, ok := p.sessions[c.Value]
	delete(p.sessions, c.Value)
	p.mu.Unlock()
	if !ok {
		render(w, http.StatusUnauthorized, "enter", map[string]string{"Error": "sign in first"})
		return
	}
	action := r.PostFormValue("action")
	if action != "allow" && action != "deny" {
		http.Error(w, "action must be allow or deny", http.StatusBadRequest)
		return
	}
	if err := p.st.decide(s.userCode, s.user, action == "allow"); err != nil {
		render(w, http.StatusNotFound, "enter", map[string]string{"Error": err.Error()})
		return
	}
	result := map[string]string{"allow": "allowed", "deny": "denied"}[action]
	render(w, http.StatusOK, "done", "Device login "+result+". You can return to your device.")
}

func render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTemplates.ExecuteTemplate(w, name, data)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
