import{nodeVersionProblem}from'./require-node.js';const problem=nodeVersionProblem();if(problem){process.stdout.write(`::error::${problem}\n`);process.exit(1)}await import('./main/deploy-env.js');
