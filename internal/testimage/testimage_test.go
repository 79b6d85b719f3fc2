package testimage_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testimage"
)

func TestBuild(t *testing.T) {
	cli := testenv.RequireDocker(t)
	envImg, shellImg := testimage.Build(t, cli)
	again, againSh := testimage.Build(t, cli)
	if again != envImg || againSh != shellImg {
		t.Fatalf("second Build gave %s, %s; want %s, %s", again, againSh, envImg, shellImg)
	}
	for _, tc := range []struct{ ref, repo, cmd string }{
		{envImg, testimage.EnvRepo, testimage.EnvProbe},
		{shellImg, testimage.ShellRepo, testimage.ShellProbe},
	} {
		if !strings.HasPrefix(tc.ref, tc.repo+":") {
			t.Errorf("image %s is not in repository %s", tc.ref, tc.repo)
		}
		img, err := cli.ImageInspect(context.Background(), tc.ref)
		if err != nil {
			t.Fatalf("inspect %s: %v", tc.ref, err)
		}
		if want := []string{tc.cmd, "env"}; !slices.Equal(img.Config.Cmd, want) {
			t.Errorf("%s: CMD %q, want %q", tc.ref, img.Config.Cmd, want)
		}
		if !slices.Contains(img.RepoTags, tc.repo+":latest") {
			t.Errorf("%s: tags %q lack :latest", tc.ref, img.RepoTags)
		}
	}
}
