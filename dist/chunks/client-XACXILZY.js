import{createRequire as __pipelineCreateRequire}from'node:module';const require=__pipelineCreateRequire(import.meta.url);
import{a,b,c,d,e}from"./chunk-ZUO3ZDSL.js";import"./chunk-66G7R2PH.js";import"./chunk-JUNKEJ2C.js";import"./chunk-UZMZCFOP.js";export{d as GitHubApiError,c as classifyGitHubError,a as createOctokit,b as networkFailure,e as withGitHubRetry};
