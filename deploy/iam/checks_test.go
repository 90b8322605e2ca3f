package iam_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// check evaluates every run against the documents and the documents
// against every run.
func (r *rig) check(runs []run) {
	t := r.t
	used := map[grant]bool{}
	recorded := map[string]bool{}
	var docs map[string]*policy
	for _, rn := range runs {
		values := r.values(rn)
		docs = map[string]*policy{}
		for _, f := range []string{readerFile, relayFile, trustFile} {
			docs[f] = loadPolicy(t, f, values[f])
		}
		auths, free := r.authorizations(rn)
		counts := map[string]int{}
		denied := map[string]int{}
		for _, a := range auths {
			recorded[a.Req.Action] = true
			counts[strings.TrimSuffix(a.Role, "-policy.json")+" "+a.Req.Action]++
			gs := docs[a.Role].allow(a.Req)
			if len(gs) == 0 {
				denied[fmt.Sprintf("%v is not allowed by deploy/iam/%s", a.Req, a.Role)]++
			}
			for _, g := range gs {
				used[g.in(a.Role)] = true
			}
		}
		for _, d := range sortedKeys(denied) {
			t.Errorf("path %s: %s (%d requests)", rn.Path, d, denied[d])
		}
		r.checkScoped(rn, auths, values)
		did := map[string]bool{}
		for _, a := range auths {
			did[a.Req.Action] = true
		}
		for _, f := range free {
			counts["no permission needed "+f]++
			did[f] = true
		}
		for _, w := range rn.Want {
			if !did[w] {
				t.Errorf("path %s recorded no %s: it did not take the path it is for", rn.Path, w)
			}
		}
		var lines []string
		for _, k := range sortedKeys(counts) {
			lines = append(lines, fmt.Sprintf("%s ×%d", k, counts[k]))
		}
		t.Logf("path %s:\n  %s", rn.Path, strings.Join(lines, "\n  "))
	}
	r.checkUnused(docs, used, recorded)
	r.checkKCL(docs, recorded)
	r.checkTrust(docs[trustFile])
	checkDocumented(t, r.values(runs[0]))
}

// checkScoped: a document filled in for another deployment — one
// placeholder at a time given another value — must deny every request
// that named the original value (in its resource, principal or condition
// keys). So `stream/*`, `table/*`, a bucket-wide `*` or `"Resource": "*"`
// fail here even though every request is allowed.
func (r *rig) checkScoped(rn run, auths []authz, values map[string]map[string]string) {
	for _, f := range []string{readerFile, relayFile, trustFile} {
		for _, name := range sortedKeys(values[f]) { // every placeholder the document should have, used or not
			orig := values[f][name]
			if orig == "" {
				continue
			}
			other := map[string]string{}
			for k, v := range values[f] {
				other[k] = v
			}
			other[name] = "other-" + orig
			doc := loadPolicy(r.t, f, other)
			broad := map[string]bool{}
			for _, a := range auths {
				if a.Role == f && a.Req.names(orig) && len(doc.allow(a.Req)) > 0 {
					broad[a.Req.String()] = true
				}
			}
			if len(broad) > 0 {
				r.t.Errorf("path %s: deploy/iam/%s filled in with ${%s} = %q still allows %s: a resource, principal or condition there is broader than the placeholder",
					rn.Path, f, name, other[name], strings.Join(sortedKeys(broad), "; "))
			}
		}
	}
}

// names reports whether the request carries v in its resource, principal
// or condition keys.
func (q request) names(v string) bool {
	if strings.Contains(q.Resource, v) || strings.Contains(q.Principal, v) {
		return true
	}
	for _, c := range q.Context {
		if strings.Contains(c, v) {
			return true
		}
	}
	return false
}

// in qualifies a grant with its document.
func (g grant) in(file string) grant { g.Sid = file + "#" + g.Sid; return g }

// checkUnused fails for every grant no recorded request used, unless it is
// a documented service-side or not-exercised grant.
func (r *rig) checkUnused(docs map[string]*policy, used map[grant]bool, recorded map[string]bool) {
	t := r.t
	for _, f := range []string{readerFile, relayFile, trustFile} {
		for _, s := range docs[f].Statement {
			for _, a := range s.Action {
				if strings.ContainsAny(a, "*?") {
					t.Errorf("deploy/iam/%s statement %s: action %q is a wildcard; the test cannot prove which actions it grants, so list them", f, s.Sid, a)
				}
			}
		}
		for _, g := range docs[f].grants() {
			if used[g.in(f)] {
				continue
			}
			if why, ok := serviceSide[g.Action]; ok {
				if recorded[g.Action] {
					t.Errorf("%s is listed as service-side but a request of the code needed it; remove it from serviceSide", g.Action)
				}
				t.Logf("deploy/iam/%s %s grants %s on %s, used by AWS on the reader's behalf: %s", f, g.Sid, g.Action, g.Resource, why)
				continue
			}
			if why, ok := notExercised[g.Action]; ok {
				t.Logf("deploy/iam/%s %s grants %s on %s, not exercised here: %s", f, g.Sid, g.Action, g.Resource, why)
				continue
			}
			t.Errorf("deploy/iam/%s statement %s grants %s on %s, which no request of any path used: remove it, "+
				"or list it in serviceSide or notExercised with the reason it is needed", f, g.Sid, g.Action, g.Resource)
		}
	}
	for action := range serviceSide {
		if !grantsAction(docs, action) {
			t.Errorf("serviceSide lists %s, which no document grants", action)
		}
	}
	// A service-side KMS grant must not be usable directly.
	for _, s := range docs[readerFile].Statement {
		for _, a := range s.Action {
			if strings.HasPrefix(a, "kms:") && s.Condition["StringEquals"]["kms:ViaService"] == nil {
				t.Errorf("deploy/iam/%s statement %s grants %s without a kms:ViaService condition", readerFile, s.Sid, a)
			}
		}
	}
}

// checkKCL: every operation the KCL's source calls must be granted, and
// the ones no path recorded must be explained in notExercised.
func (r *rig) checkKCL(docs map[string]*policy, recorded map[string]bool) {
	t := r.t
	kcl := kclActions(t)
	t.Logf("operations in the KCL's source (worker, checkpoint): %s", strings.Join(sortedKeys(kcl), ", "))
	for action, why := range bypassed {
		if !kcl[action] {
			t.Errorf("bypassed lists %s, which the KCL's source does not call", action)
		}
		if recorded[action] || grantsAction(docs, action) {
			t.Errorf("%s is bypassed (%s) but a path recorded it or a document grants it", action, why)
		}
		delete(kcl, action)
	}
	for _, action := range sortedKeys(kcl) {
		if !grantsAction(docs, action) {
			t.Errorf("the KCL calls %s (found in its source) but no document of deploy/iam grants it", action)
		}
		if _, ok := notExercised[action]; !recorded[action] && !ok {
			t.Errorf("the KCL calls %s (found in its source) but no path recorded it: exercise it, or list it in notExercised with why", action)
		}
	}
	for _, action := range sortedKeys(notExercised) {
		if recorded[action] {
			t.Errorf("notExercised lists %s, but a path recorded it: remove the entry", action)
		}
		if !kcl[action] {
			t.Errorf("notExercised lists %s, which the KCL's source does not call", action)
		}
	}
}

func grantsAction(docs map[string]*policy, action string) bool {
	for _, d := range docs {
		for _, g := range d.grants() {
			if strings.EqualFold(g.Action, action) {
				return true
			}
		}
	}
	return false
}

// checkTrust: the trust policy lets the relay's role in with the external
// ID, and nobody without it.
func (r *rig) checkTrust(trust *policy) {
	assume := func(principal string, ctx map[string]string) bool {
		return len(trust.allow(request{Action: "sts:AssumeRole", Resource: r.st.Role, Principal: principal, Context: ctx})) > 0
	}
	if assume(relayRoleARN, map[string]string{"sts:ExternalId": "not-the-external-id"}) {
		r.t.Errorf("deploy/iam/%s lets the relay in with a wrong external ID", trustFile)
	}
	if assume(relayRoleARN, nil) {
		r.t.Errorf("deploy/iam/%s lets the relay in without an external ID", trustFile)
	}
	if assume("arn:aws:iam::999999999999:root", map[string]string{"sts:ExternalId": r.st.ExternalID}) {
		r.t.Errorf("deploy/iam/%s lets another account in", trustFile)
	}
}

// checkDocumented: the README names every placeholder the documents use,
// and each document still uses every placeholder the test fills in (a
// name replaced by a wildcard is caught by checkScoped).
func checkDocumented(t *testing.T, values map[string]map[string]string) {
	for _, f := range sortedKeys(values) {
		used := map[string]bool{}
		for _, name := range placeholders(t, f) {
			used[name] = true
		}
		for _, name := range sortedKeys(values[f]) {
			if !used[name] {
				t.Errorf("deploy/iam/%s no longer uses the placeholder ${%s}", f, name)
			}
		}
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]bool{}
	for _, f := range []string{readerFile, relayFile, trustFile} {
		for _, name := range placeholders(t, f) {
			all[name] = true
		}
	}
	for _, name := range sortedKeys(all) {
		if !strings.Contains(string(readme), "`${"+name+"}`") {
			t.Errorf("deploy/iam/README.md does not document the placeholder ${%s}", name)
		}
	}
}
