// Queries: what the demo HTTP handler (handler.go) reads.

package demo

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// Projects lists the projects.
func (d *Demo) Projects(ctx context.Context) ([]Project, error) {
	rows, err := d.pool.Query(ctx, `SELECT id, name, repo, branch FROM demo.projects ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Project, error) {
		var p Project
		err := r.Scan(&p.ID, &p.Name, &p.Repo, &p.Branch)
		return p, err
	})
}

// ErrNotFound is returned for a project or build that does not exist.
var ErrNotFound = errors.New("not found")

const buildColumns = `id, project_id, number, branch, sha, message, author, state, progress, version, created_at, started_at, finished_at, updated_at`

func scanBuild(r pgx.CollectableRow) (Build, error) {
	var b Build
	err := r.Scan(&b.ID, &b.Project, &b.Number, &b.Branch, &b.Commit, &b.Message, &b.Author, &b.State, &b.Progress, &b.Version, &b.CreatedAt, &b.StartedAt, &b.FinishedAt, &b.UpdatedAt)
	return b, err
}

// Builds lists a project's most recent builds, newest first.
func (d *Demo) Builds(ctx context.Context, project int64, limit int) ([]Build, error) {
	var exists bool
	if err := d.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM demo.projects WHERE id = $1)`, project).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, ErrNotFound
	}
	rows, err := d.pool.Query(ctx, `SELECT `+buildColumns+` FROM demo.builds WHERE project_id = $1 ORDER BY id DESC LIMIT $2`, project, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanBuild)
}

// Build returns one build.
func (d *Demo) Build(ctx context.Context, id int64) (Build, error) {
	rows, err := d.pool.Query(ctx, `SELECT `+buildColumns+` FROM demo.builds WHERE id = $1`, id)
	if err != nil {
		return Build{}, err
	}
	b, err := pgx.CollectExactlyOneRow(rows, scanBuild)
	if errors.Is(err, pgx.ErrNoRows) {
		return Build{}, ErrNotFound
	}
	return b, err
}
