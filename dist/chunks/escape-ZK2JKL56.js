import{createRequire as __pipelineCreateRequire}from'node:module';const require=__pipelineCreateRequire(import.meta.url);
import{a,b,c,d,e,f,g,h,i}from"./chunk-JUNKEJ2C.js";import"./chunk-UZMZCFOP.js";export{f as codeSpan,h as escapeHtml,e as escapeMarkdown,i as escapeMermaidLabel,a as escapeSlack,b as escapeSlackPlain,g as fencedBlock,c as slackLink,d as truncate};
