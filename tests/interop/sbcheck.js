// Shared by the Node end-to-end tests: check results, printed as they come and
// collected in `fails` (the names of the failed checks) for the exit status.
'use strict';

const fails = [];

// Prints "ok   what" or "FAIL what"; a failure is remembered in fails.
function check(cond, what) {
	console.log((cond ? 'ok   ' : 'FAIL ') + what);
	if (!cond) fails.push(what);
}

module.exports = { check, fails };
