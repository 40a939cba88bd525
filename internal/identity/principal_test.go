package identity_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/identity"
)

func TestParseScope(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want identity.Scope
		err  bool
	}{
		{in: "company=1", want: identity.Scope{CompanyIDs: []string{"1"}}},
		{in: "pos_config=3|4", want: identity.Scope{PosConfigIDs: []string{"3", "4"}}},
		{in: " company = 1 | 2 ; pos_config=3 ", want: identity.Scope{CompanyIDs: []string{"1", "2"}, PosConfigIDs: []string{"3"}}},
		{in: "company=1|1", want: identity.Scope{CompanyIDs: []string{"1"}}},
		{in: "", err: true},
		{in: "company", err: true},
		{in: "company=", err: true},
		{in: "company=1||2", err: true},
		{in: "company=1;company=2", err: true},
		{in: "store=1", err: true},
		{in: "company=1;", err: true},
		{in: "company=a\x00b", err: true},
	}
	for _, c := range cases {
		got, err := identity.ParseScope(c.in)
		if c.err {
			require.ErrorIs(t, err, identity.ErrBadScope, "%q", c.in)
			continue
		}
		require.NoError(t, err, "%q", c.in)
		require.Equal(t, c.want, got, "%q", c.in)
		again, err := identity.ParseScope(got.String())
		require.NoError(t, err)
		require.Equal(t, got, again, "String and ParseScope round-trip")
	}
}

func TestScopeAllows(t *testing.T) {
	t.Parallel()
	cases := []struct {
		scope              identity.Scope
		company, posConfig string
		want               bool
	}{
		{identity.Scope{}, "", "", true},
		{identity.Scope{}, "9", "9", true},
		{identity.Scope{CompanyIDs: []string{"1"}}, "1", "", true},
		{identity.Scope{CompanyIDs: []string{"1"}}, "2", "3", false},
		{identity.Scope{CompanyIDs: []string{"1"}}, "", "3", false},
		{identity.Scope{PosConfigIDs: []string{"3", "4"}}, "", "4", true},
		{identity.Scope{PosConfigIDs: []string{"3", "4"}}, "1", "", false},
		{identity.Scope{CompanyIDs: []string{"1"}, PosConfigIDs: []string{"3"}}, "1", "3", true},
		{identity.Scope{CompanyIDs: []string{"1"}, PosConfigIDs: []string{"3"}}, "1", "4", false},
		{identity.Scope{CompanyIDs: []string{}}, "1", "3", false},
	}
	for _, c := range cases {
		require.Equal(t, c.want, c.scope.Allows(c.company, c.posConfig), "%+v %q %q", c.scope, c.company, c.posConfig)
	}
}

func TestPrincipalAllows(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		role, need string
		want       bool
	}{
		{identity.RoleAdmin, identity.RoleAdmin, true},
		{identity.RoleAdmin, identity.RolePOS, true},
		{identity.RolePOS, identity.RolePOS, true},
		{identity.RolePOS, identity.RoleAdmin, false},
		{"", identity.RolePOS, false},
		{"root", identity.RoleAdmin, false},
	} {
		require.Equal(t, c.want, identity.Principal{Role: c.role}.Allows(c.need), "%s needs %s", c.role, c.need)
	}
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"company=1", "company=1|2;pos_config=3", "pos_config=x", ";", "=|", "company=1;company=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := identity.ParseScope(in)
		if err != nil {
			require.ErrorIs(t, err, identity.ErrBadScope)
			return
		}
		require.False(t, s.Unlimited(), "a parsed scope limits something")
		again, err := identity.ParseScope(s.String())
		require.NoError(t, err)
		require.Equal(t, s, again)
	})
}
