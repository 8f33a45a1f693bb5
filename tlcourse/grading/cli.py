"""``tlcourse grade``, ``tlcourse course init`` and ``tlcourse exercises build``: thin commands."""

from __future__ import annotations

import sys

import click

from tlcourse.config import DATA_ENV, WEIGHTS_ENV
from tlcourse.errors import TLCourseError
from tlcourse.grading.grade.course import ASSIGNMENTS


@click.command()
@click.argument("assignment", type=click.Choice(ASSIGNMENTS))
@click.argument("students", nargs=-1)
@click.option(
    "--course",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The course directory made by `tlcourse course init`.",
)
@click.option(
    "--submissions",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="nbgrader's submitted/ layout (<student>/<assignment>/), or zip files "
    "(<student>.zip, or as Canvas, Moodle or Blackboard name them).",
)
@click.option(
    "--regrade",
    is_flag=True,
    help="Grade again submissions already graded and unchanged (all, or the STUDENTS named).",
)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--cell-timeout",
    type=click.IntRange(min=1),
    default=None,
    help="Seconds a cell may run (default: the course config's Execute.timeout).",
)
@click.option("--csv", type=click.Path(dir_okay=False), help="Default: COURSE/grades.csv.")
@click.option(
    "--unsandboxed",
    is_flag=True,
    help="Run students' code without the bubblewrap sandbox, for a machine that lacks it "
    "(install: apt-get install bubblewrap, or ./install.sh). Only the resource limits hold: "
    "the code can read and change what you can, and reach the network. Every grade's "
    "provenance records it.",
)
def grade(
    assignment, students, course, submissions, regrade, workers, cell_timeout, csv, unsandboxed
) -> None:
    """Autograde every submission of ASSIGNMENT (or only STUDENTS), write feedback and CSV.

    Students' code runs in a bubblewrap sandbox (as an unprivileged user, no network, only
    its own folder writable); where bubblewrap is missing or cannot run, nobody is graded
    unless --unsandboxed. First a pre-flight kernel checks the grading environment: when it
    is broken nobody is graded. Rerunning skips submissions already graded whose files did
    not change, unless --regrade. Exits non-zero when any submission was not graded.
    """
    from tlcourse.grading.grade.pool import grade_class

    try:
        result = grade_class(
            course,
            assignment,
            submissions,
            students=list(students) or None,
            regrade=regrade,
            workers=workers,
            cell_timeout=cell_timeout,
            csv=csv,
            progress=True,
            log=click.echo,
            unsandboxed=unsandboxed,
        )
    except (TLCourseError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    for graded in sorted(result.graded, key=lambda g: g["student"]):
        click.echo(f"{graded['student']}: {graded['score']:g} / {graded['max_score']:g}")
    click.echo(
        f"graded {len(result.graded)}, skipped {len(result.skipped)}, not graded "
        f"{len(result.failed)} in {result.seconds:.0f} s; feedback in {course}/feedback/; "
        f"grades in {result.csv}; report in {result.report}"
    )
    if result.failed:
        click.echo(f"not graded: {', '.join(sorted(result.failed))} (reasons above)", err=True)
        sys.exit(1)


@click.group()
def course() -> None:
    """An instructor's nbgrader course directory."""


@course.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--data", envvar=DATA_ENV, type=click.Path(exists=True), help="CIFAR-10.")
@click.option(
    "--weights", envvar=WEIGHTS_ENV, type=click.Path(exists=True, dir_okay=False), help="Weights."
)
@click.option("--force", is_flag=True, help="Rewrite the files of an existing course.")
def course_init(directory, data, weights, force) -> None:
    """Create DIRECTORY: nbgrader config, source/ from solutions/, release, held-out data."""
    from tlcourse.grading.grade.course import init_course

    try:
        path = init_course(directory, data=data, weights=weights, force=force)
    except TLCourseError as error:
        raise click.ClickException(str(error)) from error
    click.echo(
        f"course ready in {path}; grade with: tlcourse grade ASSIGNMENT --course {path} "
        "--submissions FOLDER"
    )


@click.group()
def exercises() -> None:
    """The student notebooks in exercises/, generated from solutions/ by nbgrader."""


@exercises.command("build")
@click.option("--check", is_flag=True, help="Only say whether exercises/ is up to date.")
def exercises_build(check) -> None:
    """Regenerate exercises/ from solutions/ with nbgrader's generate_assignment."""
    from tlcourse.grading.exercises import build_exercises, stale_exercises

    try:
        if check:
            stale = stale_exercises()
            if stale:
                raise click.ClickException(
                    f"exercises/ is out of date ({', '.join(stale)}): run tlcourse exercises build"
                )
            click.echo("exercises/ is up to date")
            return
        for path in build_exercises():
            click.echo(f"wrote {path}")
    except TLCourseError as error:
        raise click.ClickException(str(error)) from error
