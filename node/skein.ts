#!/usr/bin/env node
console.log("hello", process.version, process.argv.slice(2));
